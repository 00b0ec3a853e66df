// Language choice and message lookup. All user-visible text lives in ../i18n/<lang>.js.
import fr from '../i18n/fr.js'
import en from '../i18n/en.js'

const catalogs = { fr, en }
export const defaultLanguage = 'fr'

// pickLanguage returns the first of the browser's preferred languages that we speak, French when
// none is; an explicit choice (the ?lang= parameter) wins over the browser's.
export function pickLanguage (preferred, explicit) {
  for (const tag of [explicit, ...(preferred || [])]) {
    if (!tag) continue
    const base = String(tag).toLowerCase().split('-')[0]
    if (base in catalogs) return base
  }
  return defaultLanguage
}

// translator returns t(key, params) for one language. A missing key falls back to French and then
// to the key itself, so a forgotten string shows up visibly instead of as an empty control.
export function translator (lang) {
  const catalog = catalogs[lang] || catalogs[defaultLanguage]
  return function t (key, params = {}) {
    const template = catalog[key] ?? catalogs[defaultLanguage][key] ?? key
    return template.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole))
  }
}

// startPage sets up a page's language, the same way on every page: it picks it (pickLanguage,
// from the browser and ?lang=), marks the document with it and writes the text of each element
// that names its key in data-i18n. It returns { lang, t } for the page's script.
export function startPage (doc = document, nav = navigator, search = location.search) {
  const lang = pickLanguage(nav.languages || [nav.language], new URLSearchParams(search).get('lang'))
  const t = translator(lang)
  doc.documentElement.lang = lang
  for (const el of doc.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n)
  return { lang, t }
}

// momentText writes an instant (ISO 8601) in lang, on the clocks of zone (an IANA name; the
// browser's own when empty or unknown to it), in the browser's own variant of lang when it has
// one (en-GB writes 13:05, en-US 1:05 PM). An instant that cannot be read is given as it is.
export function momentText (lang, iso, zone, style = { dateStyle: 'full', timeStyle: 'short' }, nav = navigator) {
  const d = new Date(iso)
  if (iso == null || iso === '' || Number.isNaN(d.getTime())) return String(iso ?? '')
  const locale = (nav.languages || [nav.language]).find((tag) => String(tag).toLowerCase().split('-')[0] === lang) || lang
  try {
    return new Intl.DateTimeFormat(locale, { ...style, timeZone: zone || undefined }).format(d)
  } catch {
    return new Intl.DateTimeFormat(locale, style).format(d) // a zone this browser does not know
  }
}
