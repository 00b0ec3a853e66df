// Opening a sitting (chair or clerk): one the clerk prepared for this room (/prepare), with its
// roster and agenda; or the body, its legal profile, the title, the chair's seat and the
// roster, pasted or loaded from the clerk's CSV file. The server checks everything and its
// refusal (a roster line, an unknown seat) is shown as it comes.
import { h } from './dom.js'
import { momentText } from './i18n.js'
import { profiles } from './council.js'
import { labelled, checkbox } from './council-ui.js'

export const bodyKinds = ['commune', 'epci', 'departement', 'region', 'other']

export function sessionForm (panel) {
  const { t, session } = panel
  const name = h('input', { type: 'text', name: 'body-name', required: true, maxLength: 200, autocomplete: 'organization' })
  const kind = h('select', { name: 'body-kind' }, bodyKinds.map((k) => h('option', { value: k, text: t(`council.kind.${k}`) })))
  const profile = h('select', { name: 'profile' }, profiles.map((p) => h('option', { value: p, text: t(`council.profile.${p}`) })))
  const title = h('input', { type: 'text', name: 'title', maxLength: 200, value: t('council.open.defaultTitle', { date: new Date().toLocaleDateString(panel.lang, { dateStyle: 'long' }) }) })
  const location = h('input', { type: 'text', name: 'location', maxLength: 200 })
  const chair = h('input', { type: 'number', name: 'chair', min: 1, step: 1, required: true, inputMode: 'numeric', value: session.role === 'chair' && session.seat ? String(session.seat) : '' })
  const secretary = h('input', { type: 'number', name: 'secretary', min: 1, step: 1, inputMode: 'numeric' })
  const second = h('input', { type: 'checkbox', name: 'second-convocation' })
  const roster = h('textarea', { name: 'roster', rows: 7, required: true, spellcheck: false, placeholder: t('council.open.rosterExample') })
  const file = h('input', { type: 'file', name: 'roster-file', accept: '.csv,text/csv,text/plain' })
  const status = h('p', { class: 'form-status', role: 'alert' })
  const submit = h('button', { type: 'submit', class: 'button primary', text: t('council.open.submit') })

  file.addEventListener('change', async () => {
    const f = file.files?.[0]
    if (!f) return
    try {
      roster.value = await f.text()
      status.textContent = ''
      panel.ctx.announce(t('council.open.fileLoaded', { name: f.name, lines: roster.value.trim().split(/\r?\n/).length }))
    } catch (err) {
      status.textContent = t('council.open.fileFailed', { reason: err.message })
    }
  })

  const form = h('form', { class: 'council-form session-form', novalidate: true },
    h('p', { class: 'hint', text: t('council.open.intro') }),
    labelled(t('council.open.bodyName'), name),
    labelled(t('council.open.bodyKind'), kind),
    labelled(t('council.open.profile'), profile, t('council.open.profileHint')),
    labelled(t('council.open.title'), title),
    labelled(t('council.open.location'), location),
    labelled(t('council.open.chair'), chair),
    labelled(t('council.open.secretary'), secretary),
    checkbox(t('council.open.second'), second),
    labelled(t('council.open.roster'), roster, t('council.open.rosterHint')),
    labelled(t('council.open.file'), file),
    status,
    h('div', { class: 'actions' }, submit))

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    const missing = [[name, 'council.open.needName'], [chair, 'council.open.needChair'], [roster, 'council.open.needRoster']]
      .find(([el]) => !el.value.trim())
    for (const el of [name, chair, roster]) el.removeAttribute('aria-invalid')
    if (missing) {
      missing[0].setAttribute('aria-invalid', 'true')
      status.textContent = t(missing[1])
      missing[0].focus()
      return
    }
    const body = {
      body: { name: name.value.trim(), kind: kind.value, profile: profile.value },
      title: title.value.trim(),
      chair: Number(chair.value),
      rosterCsv: roster.value
    }
    if (location.value.trim()) body.location = location.value.trim()
    if (secretary.value.trim()) body.secretary = Number(secretary.value)
    if (second.checked) body.secondConvocation = true
    submit.disabled = true
    const ok = await panel.run(status, () => panel.client.openSession(body))
    submit.disabled = false
    if (ok) panel.ctx.announce(t('council.open.done'))
  })

  const prepared = h('div', { class: 'prepared-sittings' })
  offerPrepared(panel, prepared)
  return h('section', { class: 'council-section open-session', 'aria-labelledby': 'open-session-title' },
    h('h3', { id: 'open-session-title', text: t('council.open.heading') }), prepared, form)
}

// offerPrepared fills box with the sittings prepared for this room, each with the button that
// opens it; nothing when there are none (or the server keeps no preparations).
async function offerPrepared (panel, box) {
  const { t } = panel
  let sittings
  try {
    sittings = (await panel.client.found('/prepared'))?.sittings || []
  } catch {
    return // a server without a store (503): the form below is the only way
  }
  if (!sittings.length) return
  const status = h('p', { class: 'form-status', role: 'alert' })
  box.replaceChildren(h('p', { class: 'hint', text: t('council.open.preparedIntro') }),
    ...sittings.map((s) => {
      const open = h('button', { type: 'button', class: 'button primary', text: t('council.open.preparedSubmit', { title: s.title }) })
      open.addEventListener('click', async () => {
        open.disabled = true
        const ok = await panel.run(status, () => panel.client.openSession({ prepared: s.prepared }))
        open.disabled = false
        if (ok) panel.ctx.announce(t('council.open.done'))
      })
      return h('div', { class: 'prepared-sitting' },
        h('p', { text: t('council.open.preparedSitting', { body: s.body, title: s.title, date: momentText(panel.lang, s.start, s.timeZone) }) }),
        h('div', { class: 'actions' }, open))
    }),
    status,
    h('p', { class: 'hint', text: t('council.open.preparedOr') }))
}
