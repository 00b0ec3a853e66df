// The clerk's pages, /prepare: a body and its roster (imported from the CSV file), a sitting
// prepared ahead (date, place, agenda), the convocation sent with each member's invitation, and
// who received, opened and used their link. The clerk signs in with a token for the body (no
// room), from `hemicycle token --body … --role clerk`; every route is the server's
// /api/bodies/{body}/… (docs/api.md, Preparing sittings), and every refusal is shown as the
// server words it (in the page's language, through Accept-Language).
import { h, focusHeading } from './dom.js'
import { startPage, momentText } from './i18n.js'
import { readInvitation, tokenFromInput, InvitationError } from './invitation.js'
import { profiles, ApiError } from './council.js'
import { labelled, checkbox } from './council-ui.js'
import { bodyKinds } from './session-form.js'

const tokenKey = 'hemicycle.clerk'
const { lang, t } = startPage()
const main = document.getElementById('main')
const region = document.getElementById('announcements')

function announce (text) {
  const item = h('p', { text })
  region.append(item)
  setTimeout(() => item.remove(), 10000)
  while (region.childElementCount > 4) region.firstElementChild.remove()
}

function show (root) {
  main.replaceChildren(root)
  const heading = root.querySelector('h1')?.textContent
  document.title = heading ? `${heading} – ${t('app.name')}` : t('app.name')
}

// clerkSession reads a token and accepts it only for a body's clerk.
function clerkSession (token) {
  const s = readInvitation(token)
  if (s.role !== 'clerk' || !s.body) throw new InvitationError('invalid')
  return s
}

// BodyClient calls /api/bodies/{body}/… with the clerk's token.
class BodyClient {
  constructor (session) {
    this.session = session
    this.base = `/api/bodies/${encodeURIComponent(session.body)}`
  }

  async request (method, path, { json, text, type, raw } = {}) {
    const headers = { Authorization: `Bearer ${this.session.token}`, Accept: 'application/json', 'Accept-Language': lang }
    let body
    if (json !== undefined) {
      headers['Content-Type'] = 'application/json'
      body = JSON.stringify(json)
    } else if (text !== undefined) {
      headers['Content-Type'] = type
      body = text
    }
    let res
    try {
      res = await fetch(this.base + path, { method, headers, body, cache: 'no-store' })
    } catch (err) {
      throw new ApiError(0, t('prepare.unreachable', { reason: err.message }))
    }
    if (!res.ok) {
      const data = await res.json().catch(() => null)
      const err = new ApiError(res.status, typeof data?.error === 'string' ? data.error : `HTTP ${res.status}`)
      err.line = data?.line ?? null
      throw err
    }
    return raw ? res.blob() : res.json()
  }

  get (path) { return this.request('GET', path) }
  post (path, json) { return this.request('POST', path, { json: json ?? {} }) }
}

// ---- time in the body's zone: the clerk types the sitting's local date and time ----

function zoneParts (ms, zone) {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit'
  }).formatToParts(new Date(ms))
  return Object.fromEntries(parts.map((p) => [p.type, p.value]))
}

function zoneOffset (ms, zone) {
  const p = zoneParts(ms, zone)
  return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - ms
}

// zonedInstant is the instant of a wall-clock date ("2026-12-10") and time ("18:30") in zone.
export function zonedInstant (date, time, zone) {
  const [y, mo, d] = date.split('-').map(Number)
  const [hh, mm] = time.split(':').map(Number)
  const wall = Date.UTC(y, mo - 1, d, hh, mm)
  const first = wall - zoneOffset(wall, zone)
  return new Date(wall - zoneOffset(first, zone)).toISOString()
}

// zonedWall is the date and time of an instant on the wall clocks of zone.
export function zonedWall (iso, zone) {
  const p = zoneParts(new Date(iso).getTime(), zone)
  return { date: `${p.year}-${p.month}-${p.day}`, time: `${p.hour}:${p.minute}` }
}

// moment writes an instant in the page's language on the body's clocks; day, its date only.
function moment (iso, zone, style) {
  return iso ? momentText(lang, iso, zone, style) : ''
}

function day (iso, zone) {
  return moment(iso, zone, { dateStyle: 'full' })
}

// ---- pieces ----

function status () {
  return h('p', { class: 'form-status', role: 'alert' })
}

// run calls fn with the button disabled; a refusal is written in out, as the server gives it.
async function run (button, out, fn) {
  out.textContent = ''
  button.disabled = true
  try {
    return await fn()
  } catch (err) {
    out.textContent = err instanceof ApiError ? err.reason : String(err.message || err)
    if (err instanceof ApiError && err.status === 401) signIn(t('prepare.signin.expired'))
    return undefined
  } finally {
    button.disabled = false
  }
}

function section (id, title, ...children) {
  return h('section', { class: 'prepare-section', 'aria-labelledby': id }, h('h2', { id, text: title }), ...children)
}

// askReason puts in place of shown (which holds button) a form that asks for the reason of an
// action, with its confirmation and a way back; act(reason) runs on confirmation, and its
// refusal is written in out.
function askReason (shown, button, { label, confirm: confirmText, needReason, out, act }) {
  const reason = h('input', { type: 'text', name: 'reason', maxLength: 300, autocomplete: 'off' })
  const confirm = h('button', { type: 'submit', class: 'button danger', text: confirmText })
  const cancel = h('button', { type: 'button', class: 'button', text: t('prepare.invitations.cancel') })
  const form = h('form', { class: 'revoke-form', novalidate: true },
    labelled(label, reason), h('div', { class: 'actions' }, confirm, cancel))
  cancel.addEventListener('click', () => {
    form.replaceWith(shown)
    button.focus()
  })
  form.addEventListener('submit', (ev) => {
    ev.preventDefault()
    reason.removeAttribute('aria-invalid')
    if (!reason.value.trim()) {
      out.textContent = needReason
      reason.setAttribute('aria-invalid', 'true')
      reason.focus()
      return
    }
    run(confirm, out, () => act(reason.value.trim()))
  })
  shown.replaceWith(form)
  reason.focus()
}

// ---- sign-in ----

function signIn (message) {
  sessionStorage.removeItem(tokenKey)
  history.replaceState(null, '', '/prepare')
  const input = h('input', { type: 'text', name: 'clerk-token', autocomplete: 'off', spellcheck: false })
  const out = status()
  if (message) out.textContent = message
  const form = h('form', { class: 'invite-form', novalidate: true },
    h('p', { text: t('prepare.signin.intro') }),
    labelled(t('prepare.signin.label'), input),
    h('button', { type: 'submit', class: 'button primary', text: t('prepare.signin.submit') }))
  form.addEventListener('submit', (ev) => {
    ev.preventDefault()
    try {
      start(clerkSession(tokenFromInput(input.value)))
    } catch (err) {
      out.textContent = t(err instanceof InvitationError && err.kind === 'expired' ? 'prepare.signin.expired' : 'prepare.signin.invalid')
      input.setAttribute('aria-invalid', 'true')
      input.focus()
    }
  })
  show(h('section', { class: 'card join', 'aria-labelledby': 'prepare-title' },
    h('h1', { id: 'prepare-title', text: t('prepare.title') }), out, form))
}

// ---- the clerk's page ----

function start (session) {
  sessionStorage.setItem(tokenKey, session.token)
  history.replaceState(null, '', '/prepare')
  const api = new BodyClient(session)
  const page = { api, session, body: null, sitting: null }

  const bodyPart = bodyForm(page)
  const rosterPart = rosterForm(page)
  const sittingPart = sittingForm(page)
  const invitePart = invitations(page)
  page.bodyChanged = (b) => {
    page.body = b
    bodyPart.fill(b)
    rosterPart.fill(b)
    sittingPart.seats(b)
  }
  page.sittingChanged = (s) => {
    page.sitting = s
    sittingPart.fill(s)
    invitePart.sitting(s)
  }

  const root = h('div', { class: 'card prepare' },
    h('h1', { id: 'prepare-title', text: t('prepare.title') }),
    h('p', { class: 'joining-as', text: t('prepare.signedIn', { name: session.name, body: session.body }) }),
    h('div', { class: 'actions' }, h('button', { type: 'button', class: 'button', text: t('prepare.signOut'), onclick: () => signIn() })),
    bodyPart.root, rosterPart.root, sittingPart.root, invitePart.root)
  show(root)
  focusHeading(main)

  api.get('').then(page.bodyChanged, (err) => {
    if (err instanceof ApiError && err.status === 404) bodyPart.fill(null)
    else if (err instanceof ApiError && err.status === 401) signIn(t('prepare.signin.expired'))
    else bodyPart.out.textContent = err.reason || String(err)
  })
  sittingPart.list()
}

function bodyForm (page) {
  const name = h('input', { type: 'text', name: 'body-name', required: true, maxLength: 200, autocomplete: 'organization' })
  const kind = h('select', { name: 'body-kind' }, bodyKinds.map((k) => h('option', { value: k, text: t(`council.kind.${k}`) })))
  const profile = h('select', { name: 'profile' }, profiles.map((p) => h('option', { value: p, text: t(`council.profile.${p}`) })))
  const zone = h('input', { type: 'text', name: 'time-zone', value: 'Europe/Paris', maxLength: 64, autocomplete: 'off', spellcheck: false })
  const population = h('input', { type: 'number', name: 'population', min: 0, step: 1, inputMode: 'numeric' })
  const out = status()
  const done = h('p', { class: 'hint', role: 'status' })
  const submit = h('button', { type: 'submit', class: 'button primary', text: t('prepare.body.save') })
  const form = h('form', { class: 'council-form', novalidate: true },
    labelled(t('council.open.bodyName'), name),
    labelled(t('council.open.bodyKind'), kind),
    labelled(t('council.open.profile'), profile, t('prepare.body.profileHint')),
    labelled(t('prepare.body.timeZone'), zone, t('prepare.body.timeZoneHint')),
    labelled(t('prepare.body.population'), population, t('prepare.body.populationHint')),
    out, done, h('div', { class: 'actions' }, submit))
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    done.textContent = ''
    const req = { name: name.value.trim(), kind: kind.value, profile: profile.value, timeZone: zone.value.trim(), population: Number(population.value || 0) }
    const b = await run(submit, out, () => page.api.post('', req))
    if (b) {
      page.bodyChanged(b)
      done.textContent = t('prepare.body.saved', { name: b.name })
    }
  })
  return {
    root: section('body-title', t('prepare.body.heading'), h('p', { class: 'hint', text: t('prepare.body.intro', { body: page.session.body }) }), form),
    out,
    fill (b) {
      if (!b) {
        done.textContent = t('prepare.body.none')
        return
      }
      name.value = b.name || ''
      kind.value = b.kind || 'other'
      profile.value = b.profile
      zone.value = b.timeZone || 'Europe/Paris'
      population.value = b.population ? String(b.population) : ''
    }
  }
}

function rosterForm (page) {
  const file = h('input', { type: 'file', name: 'roster-file', accept: '.csv,text/csv,text/plain' })
  const out = status()
  const done = h('p', { class: 'hint', role: 'status' })
  const submit = h('button', { type: 'submit', class: 'button primary', text: t('prepare.roster.import') })
  const table = h('div', { class: 'prepare-table' })
  const form = h('form', { class: 'council-form', novalidate: true },
    labelled(t('prepare.roster.file'), file, t('prepare.roster.hint')),
    out, done, h('div', { class: 'actions' }, submit))
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    done.textContent = ''
    file.removeAttribute('aria-invalid')
    const f = file.files?.[0]
    if (!f) {
      out.textContent = t('prepare.roster.needFile')
      file.setAttribute('aria-invalid', 'true')
      file.focus()
      return
    }
    const b = await run(submit, out, async () => page.api.request('POST', '/roster', { text: await f.text(), type: 'text/csv;charset=utf-8' }))
    if (b) {
      page.bodyChanged(b)
      done.textContent = t('prepare.roster.imported', { seats: b.seats, members: b.membersInOffice })
      announce(done.textContent)
    } else {
      file.setAttribute('aria-invalid', 'true')
    }
  })
  return {
    root: section('roster-title', t('prepare.roster.heading'), form, table),
    fill (b) {
      const seats = b?.roster?.seats || []
      if (!seats.length) {
        table.replaceChildren(h('p', { class: 'hint', text: t('prepare.roster.empty') }))
        return
      }
      table.replaceChildren(h('table', {},
        h('caption', { text: t('prepare.roster.caption', { members: b.membersInOffice, seats: b.seats }) }),
        h('thead', {}, h('tr', {}, ['prepare.col.seat', 'prepare.col.name', 'prepare.col.group', 'prepare.col.role'].map((k) => h('th', { scope: 'col', text: t(k) })))),
        h('tbody', {}, seats.map((s) => h('tr', {},
          h('td', { text: String(s.seat) }),
          h('td', { text: s.name || t('prepare.roster.vacant') }),
          h('td', { text: s.group || '' }),
          h('td', { text: s.role || '' }))))))
    }
  }
}

// itemNotes lists an item's explanatory notes (name, size, SHA-256, which the convocation's
// mail repeats so that a member can check the note they read) and attaches another, from a file;
// only for an item the server has (a saved sitting's).
function itemNotes (page, sitting, item, n) {
  const file = h('input', { type: 'file', name: 'note-file', accept: '.pdf,application/pdf,.odt,.docx,.txt' })
  const attach = h('button', { type: 'button', class: 'button', text: t('prepare.note.attach') })
  const out = status()
  attach.addEventListener('click', async () => {
    const f = file.files?.[0]
    file.removeAttribute('aria-invalid')
    if (!f) {
      out.textContent = t('prepare.note.needFile')
      file.setAttribute('aria-invalid', 'true')
      file.focus()
      return
    }
    const path = `/sittings/${encodeURIComponent(sitting.id)}/items/${encodeURIComponent(item.id)}/notes?name=${encodeURIComponent(f.name)}`
    const s = await run(attach, out, () => page.api.request('POST', path, { text: f, type: f.type || 'application/octet-stream' }))
    if (s) {
      page.sittingChanged(s)
      announce(t('prepare.note.attached', { name: f.name }))
    }
  })
  const notes = item.notes || []
  return h('div', { class: 'prepare-notes' },
    notes.length ? h('ul', { class: 'prepare-note-list', 'aria-label': t('prepare.note.listFor', { n }) }, notes.map((nt) => h('li', { text: t('prepare.note.item', { name: nt.name, size: nt.size, hash: nt.sha256 }) }))) : null,
    labelled(t('prepare.note.file', { n }), file),
    out,
    h('div', { class: 'actions' }, attach))
}

function itemFields (remove) {
  const title = h('input', { type: 'text', name: 'item-title', maxLength: 300, autocomplete: 'off' })
  const kind = h('input', { type: 'text', name: 'item-kind', maxLength: 64, autocomplete: 'off' })
  const rapporteur = h('input', { type: 'text', name: 'item-rapporteur', maxLength: 200, autocomplete: 'off' })
  const proposal = h('textarea', { name: 'item-proposal', rows: 3 })
  const legend = h('legend')
  const extra = h('div')
  const root = h('fieldset', { class: 'prepare-item' }, legend,
    labelled(t('council.item.title'), title),
    labelled(t('council.item.kind'), kind, t('council.item.kindHint')),
    labelled(t('prepare.item.rapporteur'), rapporteur),
    labelled(t('prepare.item.proposal'), proposal),
    remove ? h('div', { class: 'actions' }, h('button', { type: 'button', class: 'button', text: t('prepare.item.remove'), onclick: () => remove(root) })) : null,
    extra)
  let itemId = null // kept from the saved item: its notes stay with it
  return {
    root,
    extra,
    number (n) { legend.textContent = t('prepare.item.legend', { n }) },
    caption (text) { legend.textContent = text },
    get id () { return itemId },
    fill (it) {
      itemId = it.id
      title.value = it.title || ''
      kind.value = it.kind || ''
      rapporteur.value = it.rapporteur || ''
      proposal.value = it.proposal || ''
    },
    value (id) {
      const it = { id, title: title.value.trim() }
      if (kind.value.trim()) it.kind = kind.value.trim()
      if (rapporteur.value.trim()) it.rapporteur = rapporteur.value.trim()
      if (proposal.value.trim()) it.proposal = proposal.value.trim()
      return it
    },
    title
  }
}

// nextItemId is the next free number among the identifiers of items (each with an id, null
// for one not saved yet), for a new item.
function nextItemId (items) {
  return String(Math.max(0, ...items.map((it) => Number(it.id)).filter(Number.isInteger)) + 1)
}

// agendaOf is the agenda the fields say: saved items keep their identifier (and so their
// notes), new ones take the next free numbers.
function agendaOf (items) {
  let last = Number(nextItemId(items)) - 1
  return items.map((it) => it.value(it.id ?? String(++last)))
}

function sittingForm (page) {
  const pick = h('select', { name: 'sitting-pick' })
  const id = h('input', { type: 'text', name: 'sitting-id', maxLength: 64, autocomplete: 'off', spellcheck: false })
  const title = h('input', { type: 'text', name: 'sitting-title', maxLength: 200 })
  const date = h('input', { type: 'date', name: 'sitting-date' })
  const time = h('input', { type: 'time', name: 'sitting-time', value: '18:30' })
  const place = h('input', { type: 'text', name: 'sitting-place', maxLength: 200 })
  const room = h('input', { type: 'text', name: 'sitting-room', maxLength: 64, autocomplete: 'off', spellcheck: false })
  const chair = h('select', { name: 'sitting-chair' })
  const emergency = h('input', { type: 'checkbox', name: 'emergency' })
  const text = h('textarea', { name: 'convocation-text', rows: 3 })
  const items = []
  const itemsBox = h('div', { class: 'prepare-items' })
  const afterBox = h('div', { class: 'prepare-after', hidden: true })
  const out = status()
  const check = h('div', { class: 'convocation-check', 'aria-live': 'polite' })
  const submit = h('button', { type: 'submit', class: 'button primary', text: t('prepare.sitting.save') })

  const renumber = () => items.forEach((it, i) => it.number(i + 1))
  const addItem = (value) => {
    const it = itemFields((root) => {
      const i = items.findIndex((x) => x.root === root)
      if (i < 0) return
      items.splice(i, 1)
      root.remove()
      renumber()
      addButton.focus()
    })
    items.push(it)
    itemsBox.append(it.root)
    renumber()
    if (value) it.fill(value)
    return it
  }
  const addButton = h('button', { type: 'button', class: 'button', text: t('prepare.item.add'), onclick: () => addItem().title.focus() })
  addItem()

  // The sitting's identifier follows its date until the clerk writes one.
  date.addEventListener('change', () => {
    if (!id.dataset.typed) id.value = date.value
    if (!room.dataset.typed && date.value) room.value = `${page.session.body}-${date.value}`
  })
  id.addEventListener('input', () => { id.dataset.typed = 'true' })
  room.addEventListener('input', () => { room.dataset.typed = 'true' })

  const form = h('form', { class: 'council-form', novalidate: true },
    labelled(t('prepare.sitting.pick'), pick),
    labelled(t('prepare.sitting.title'), title),
    h('div', { class: 'field-row' }, labelled(t('prepare.sitting.date'), date), labelled(t('prepare.sitting.time'), time)),
    labelled(t('prepare.sitting.id'), id, t('prepare.sitting.idHint')),
    labelled(t('prepare.sitting.place'), place),
    labelled(t('prepare.sitting.room'), room, t('prepare.sitting.roomHint')),
    labelled(t('prepare.sitting.chair'), chair),
    checkbox(t('prepare.sitting.emergency'), emergency),
    labelled(t('prepare.sitting.text'), text),
    h('h3', { text: t('council.item.heading') }),
    itemsBox,
    h('div', { class: 'actions' }, addButton),
    afterBox,
    out, check,
    h('div', { class: 'actions' }, submit))

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    const zone = page.body?.timeZone || 'Europe/Paris'
    const missing = [[title, 'prepare.sitting.needTitle'], [date, 'prepare.sitting.needDate'], [time, 'prepare.sitting.needTime'], [id, 'prepare.sitting.needId']]
      .find(([el]) => !el.value.trim()) || items.map((it) => [it.title, 'council.item.needTitle']).find(([el]) => !el.value.trim())
    for (const el of [title, date, time, id, ...items.map((it) => it.title)]) el.removeAttribute('aria-invalid')
    if (missing) {
      missing[0].setAttribute('aria-invalid', 'true')
      out.textContent = t(missing[1])
      missing[0].focus()
      return
    }
    const req = {
      title: title.value.trim(),
      start: zonedInstant(date.value, time.value, zone),
      place: place.value.trim(),
      room: room.value.trim(),
      chair: Number(chair.value || 0),
      emergency: emergency.checked,
      agenda: agendaOf(items),
      convocation: text.value.trim()
    }
    const s = await run(submit, out, () => page.api.post(`/sittings/${encodeURIComponent(id.value.trim())}`, req))
    if (s) {
      page.sittingChanged(s)
      announce(t('prepare.sitting.saved', { title: s.title }))
      refreshList(s.id)
    }
  })

  const sittings = new Map()
  let asked = 0 // the latest listing asked for: an older answer arriving late is dropped
  async function refreshList (selected) {
    const mine = ++asked
    let list
    try {
      list = await page.api.get('/sittings')
    } catch {
      return // the body may not exist yet
    }
    if (mine !== asked) return
    sittings.clear()
    for (const s of list.sittings || []) sittings.set(s.id, s)
    pick.replaceChildren(h('option', { value: '', text: t('prepare.sitting.new') }),
      ...[...sittings.values()].map((s) => h('option', { value: s.id, text: t('prepare.sitting.option', { id: s.id, title: s.title }) })))
    pick.value = selected && sittings.has(selected) ? selected : ''
  }
  pick.addEventListener('change', async () => {
    if (!pick.value) {
      page.sittingChanged(null) // a new sitting, from a blank form
      return
    }
    const s = await run(pick, out, () => page.api.get(`/sittings/${encodeURIComponent(pick.value)}`))
    if (s) page.sittingChanged(s)
  })

  return {
    root: section('sitting-title', t('prepare.sitting.heading'), h('p', { class: 'hint', text: t('prepare.sitting.intro') }), form),
    list: refreshList,
    seats (b) {
      const keep = chair.value
      chair.replaceChildren(h('option', { value: '', text: t('prepare.sitting.noChair') }),
        ...(b?.roster?.seats || []).filter((s) => s.name).map((s) => h('option', { value: String(s.seat), text: t('prepare.seat', { seat: s.seat, name: s.name }) })))
      chair.value = keep
      refreshList(page.sitting?.id)
    },
    // fill shows a saved sitting, or a blank form for a new one when s is null.
    fill (s) {
      const zone = page.body?.timeZone || 'Europe/Paris'
      const wall = s ? zonedWall(s.start, zone) : { date: '', time: '18:30' }
      id.value = s?.id || ''
      title.value = s?.title || ''
      date.value = wall.date
      time.value = wall.time
      place.value = s?.place || ''
      room.value = s?.room || ''
      for (const el of [id, room]) {
        if (s) el.dataset.typed = 'true'
        else delete el.dataset.typed
      }
      chair.value = s?.chair ? String(s.chair) : ''
      emergency.checked = !!s?.emergency
      text.value = s?.convocation?.text || ''
      const sent = !!s?.convocation?.sentAt
      for (const it of items.splice(0)) it.root.remove()
      if (!sent) {
        ;(s?.agenda || []).forEach((value, i) => { addItem(value).extra.replaceChildren(itemNotes(page, s, value, i + 1)) })
        if (!items.length) addItem()
      }
      // Once the convocation is sent, the sitting is as sent; its agenda changes item by item.
      for (const el of [title, date, time, id, place, room, chair, emergency, text]) el.disabled = sent
      addButton.parentElement.hidden = sent
      afterBox.hidden = !sent
      afterBox.replaceChildren(...(sent ? agendaAfterSending(page, s) : []))
      out.textContent = ''
      submit.disabled = sent
      check.replaceChildren(...(s ? convocationCheck(s, zone) : []))
    }
  }
}

// agendaAfterSending shows a sent sitting's agenda: each item with its notes and, unless it was
// withdrawn, the button that withdraws it (with a reason); and a form that adds an item. The
// server records each change as made after sending, and the page says so on the item.
function agendaAfterSending (page, s) {
  const path = `/sittings/${encodeURIComponent(s.id)}/items`
  const out = status()
  const reasonOf = (id) => (s.changesAfterSending || []).findLast((c) => c.change === 'withdrawn' && c.item === id)?.reason || ''
  const list = h('ol', { class: 'prepare-after-items' }, (s.agenda || []).map((it, i) => {
    const n = i + 1
    const li = h('li', { class: 'prepare-item', dataset: { item: it.id } },
      h('p', { class: 'prepare-item-title', text: it.rapporteur ? t('prepare.after.itemBy', { title: it.title, rapporteur: it.rapporteur }) : it.title }))
    if (it.withdrawn) li.append(h('p', { class: 'attention', text: t('prepare.after.withdrawn', { reason: reasonOf(it.id) || '—' }) }))
    else if (it.addedAfterSending) li.append(h('p', { class: 'hint', text: t('prepare.after.added') }))
    if (!it.withdrawn) {
      li.append(itemNotes(page, s, it, n))
      const withdraw = h('button', { type: 'button', class: 'button danger', text: t('prepare.after.withdraw'), 'aria-label': t('prepare.after.withdrawFor', { title: it.title }) })
      const actions = h('div', { class: 'actions' }, withdraw)
      withdraw.addEventListener('click', () => askReason(actions, withdraw, {
        label: t('prepare.after.reason', { n, title: it.title }),
        confirm: t('prepare.after.withdrawConfirm'),
        needReason: t('prepare.after.needReason'),
        out,
        async act (reason) {
          page.sittingChanged(await page.api.post(`${path}/${encodeURIComponent(it.id)}/withdraw`, { reason }))
          announce(t('prepare.after.withdrawnNow', { title: it.title }))
        }
      }))
      li.append(actions)
    }
    return li
  }))

  const fields = itemFields(null)
  fields.caption(t('prepare.after.addLegend'))
  const add = h('button', { type: 'submit', class: 'button primary', text: t('prepare.after.add') })
  const addForm = h('form', { class: 'council-form', novalidate: true }, fields.root, h('div', { class: 'actions' }, add))
  addForm.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    fields.title.removeAttribute('aria-invalid')
    if (!fields.title.value.trim()) {
      out.textContent = t('council.item.needTitle')
      fields.title.setAttribute('aria-invalid', 'true')
      fields.title.focus()
      return
    }
    const item = fields.value(nextItemId(s.agenda || []))
    const res = await run(add, out, () => page.api.post(path, item))
    if (res) {
      page.sittingChanged(res)
      announce(t('prepare.after.addedNow', { title: item.title }))
    }
  })
  return [h('p', { class: 'hint', text: t('prepare.after.intro') }), list, out, addForm]
}

// convocationCheck says whether the convocation is (or was) sent within the legal delay; the
// warning is the server's, in the page's language.
function convocationCheck (s, zone) {
  const c = s.convocationCheck
  const lines = []
  if (s.convocation?.sentAt) lines.push(h('p', { class: 'hint', text: t('prepare.convocation.sentAt', { date: moment(s.convocation.sentAt, zone) }) }))
  if (s.warning) lines.push(h('p', { class: 'attention convocation-late', role: 'alert', text: s.warning }))
  else if (c) lines.push(h('p', { class: 'hint convocation-on-time', text: t('prepare.convocation.onTime', { clear: c.clearDays, required: c.requiredClearDays, deadline: day(c.deadline, zone) }) }))
  return lines
}

function invitations (page) {
  const send = h('button', { type: 'button', class: 'button primary', text: t('prepare.convocation.send'), disabled: true })
  const refresh = h('button', { type: 'button', class: 'button', text: t('prepare.invitations.refresh'), disabled: true })
  const out = status()
  const intro = h('p', { class: 'hint', text: t('prepare.convocation.none') })
  const summary = h('p', { role: 'status' })
  const table = h('div', { class: 'prepare-table' })
  const qr = h('div', { class: 'prepare-qr' })
  const path = () => `/sittings/${encodeURIComponent(page.sitting.id)}`

  send.addEventListener('click', async () => {
    const res = await run(send, out, () => page.api.post(`${path()}/convocation`))
    if (res) {
      page.sittingChanged(res.sitting)
      announce(t('prepare.convocation.sent', { count: res.invitations?.length ?? 0 }))
      await load()
    }
  })
  refresh.addEventListener('click', () => load())

  async function load () {
    const res = await run(refresh, out, () => page.api.get(`${path()}/invitations`))
    if (!res) return
    const c = res.counts || {}
    summary.textContent = t('prepare.invitations.counts', { invited: c.invited ?? 0, received: c.received ?? 0, opened: c.opened ?? 0, used: c.used ?? 0, revoked: c.revoked ?? 0 })
    const zone = page.body?.timeZone
    const when = (flag, at) => (flag ? t('prepare.invitations.yes', { date: moment(at, zone) }) : t('prepare.invitations.no'))
    table.replaceChildren(h('table', { class: 'invitations' },
      h('caption', { text: t('prepare.invitations.caption') }),
      h('thead', {}, h('tr', {}, ['prepare.col.seat', 'prepare.col.name', 'prepare.col.received', 'prepare.col.opened', 'prepare.col.used', 'prepare.col.actions'].map((k) => h('th', { scope: 'col', text: t(k) })))),
      h('tbody', {}, (res.invitations || []).map((e) => h('tr', { dataset: { seat: String(e.seat) } },
        h('td', { text: String(e.seat) }),
        h('th', { scope: 'row', text: e.name }),
        h('td', { text: e.received ? when(true, e.sentAt) : (e.sendError ? t('prepare.invitations.sendError', { reason: e.sendError }) : (e.email ? t('prepare.invitations.no') : t('prepare.invitations.noEmail'))) }),
        h('td', { text: when(e.opened, e.openedAt) }),
        h('td', { text: e.revoked ? t('prepare.invitations.revoked', { date: moment(e.revokedAt, zone), reason: e.reason }) : when(e.used, e.usedAt) }),
        h('td', {}, actions(e)))))))
  }

  function actions (e) {
    const box = h('div', { class: 'row-actions' })
    const qrButton = h('button', { type: 'button', class: 'button', text: t('prepare.invitations.qr'), 'aria-label': t('prepare.invitations.qrFor', { name: e.name }) })
    qrButton.addEventListener('click', async () => {
      const blob = await run(qrButton, out, () => page.api.request('GET', `${path()}/invitations/${e.seat}/qr`, { raw: true }))
      if (!blob) return
      const url = URL.createObjectURL(blob)
      qr.replaceChildren(h('figure', {},
        h('img', { src: url, alt: t('prepare.invitations.qrAlt', { name: e.name }), width: 192, height: 192 }),
        h('figcaption', { text: t('prepare.invitations.qrCaption', { name: e.name }) })))
    })
    box.append(qrButton)
    if (!e.revoked) {
      const revoke = h('button', { type: 'button', class: 'button danger', text: t('prepare.invitations.revoke'), 'aria-label': t('prepare.invitations.revokeFor', { name: e.name }) })
      revoke.addEventListener('click', () => askReason(revoke, revoke, {
        label: t('prepare.invitations.reason', { name: e.name }),
        confirm: t('prepare.invitations.revokeConfirm'),
        needReason: t('prepare.invitations.needReason'),
        out,
        async act (reason) {
          await page.api.post(`${path()}/invitations/${e.seat}/revoke`, { reason })
          announce(t('prepare.invitations.revokedNow', { name: e.name }))
          await load()
        }
      }))
      box.append(revoke)
    }
    return box
  }

  return {
    root: section('invitations-title', t('prepare.invitations.heading'), intro, out, h('div', { class: 'actions' }, send, refresh), summary, table, qr),
    sitting (s) {
      const sent = !!s?.convocation?.sentAt
      intro.textContent = s ? t(sent ? 'prepare.convocation.already' : 'prepare.convocation.ready', { title: s.title }) : t('prepare.convocation.none')
      send.disabled = !s || sent
      refresh.disabled = !sent
      out.textContent = ''
      qr.replaceChildren()
      if (sent) load()
      else {
        summary.textContent = ''
        table.replaceChildren()
      }
    }
  }
}

// ---- start-up ----

function boot () {
  const params = new URLSearchParams(location.search)
  const token = params.get('token') || sessionStorage.getItem(tokenKey)
  if (!token) {
    signIn()
    return
  }
  try {
    start(clerkSession(token))
  } catch (err) {
    signIn(t(err instanceof InvitationError && err.kind === 'expired' ? 'prepare.signin.expired' : 'prepare.signin.invalid'))
  }
}

boot()
