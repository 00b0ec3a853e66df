// Join screen: paste an invitation, or (on a --dev server) mint a development invitation.
import { h, uniqueId } from './dom.js'
import { momentText } from './i18n.js'
import { roles, readInvitation, tokenFromInput, mintDevInvitation, InvitationError, DevInvitationError } from './invitation.js'

// devFailures words each reason a development invitation could not be had.
const devFailures = { unreachable: 'join.dev.unreachable', refused: 'join.dev.refused', noToken: 'join.dev.noToken' }

// field builds a labelled control with an error slot wired through aria-describedby.
function field (labelText, control, hint) {
  const id = control.id || uniqueId('field')
  control.id = id
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true })
  const describedBy = [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(' ')
  control.setAttribute('aria-describedby', describedBy)
  const wrapper = h('div', { class: 'field' },
    h('label', { for: id, text: labelText }),
    hint ? h('p', { class: 'hint', id: `${id}-hint`, text: hint }) : null,
    control,
    error)
  return {
    wrapper,
    control,
    setError (message) {
      error.textContent = message || ''
      error.hidden = !message
      if (message) control.setAttribute('aria-invalid', 'true')
      else control.removeAttribute('aria-invalid')
    }
  }
}

export function renderJoin (ctx, { message } = {}) {
  const { t, config } = ctx
  const status = h('p', { class: 'form-status', role: 'alert' })
  if (message) status.textContent = message

  const content = [h('h1', { id: 'join-title', text: t('join.title') }), status]

  if (config.dev) content.push(devForm(ctx, status))
  content.push(invitationForm(ctx, status))

  return h('section', { class: 'card join', 'aria-labelledby': 'join-title' }, ...content)
}

// renderAhead is what a member sees who follows their invitation link before it admits them:
// the sitting they are convened to, their seat, its agenda, and from when the link opens the
// room (message); retry follows the link again.
export function renderAhead (ctx, { sitting, zone, message, retry }) {
  const { t, lang } = ctx
  const status = h('p', { class: 'attention', role: 'status', text: message })
  const again = h('button', { type: 'button', class: 'button primary', text: t('invitation.ahead.retry') })
  again.addEventListener('click', async () => {
    again.disabled = true
    await retry()
    again.disabled = false
  })
  const agenda = (sitting.agenda || []).filter((it) => !it.withdrawn)
  return h('section', { class: 'card join', 'aria-labelledby': 'ahead-title' },
    h('h1', { id: 'ahead-title', text: t('invitation.ahead.title') }),
    h('p', { class: 'ahead-sitting', text: t('invitation.ahead.sitting', { body: sitting.body, title: sitting.title }) }),
    h('p', { text: t('invitation.ahead.when', { date: momentText(lang, sitting.start, zone) }) }),
    sitting.place ? h('p', { text: t('invitation.ahead.place', { place: sitting.place }) }) : null,
    h('p', { text: t('invitation.ahead.seat', { name: sitting.name, seat: sitting.seat }) }),
    agenda.length ? h('h2', { text: t('invitation.ahead.agenda') }) : null,
    agenda.length ? h('ol', { class: 'ahead-agenda' }, agenda.map((it) => h('li', { text: it.rapporteur ? t('invitation.ahead.item', { title: it.title, rapporteur: it.rapporteur }) : it.title }))) : null,
    status,
    h('div', { class: 'actions' }, again))
}

function invitationForm (ctx, status) {
  const { t } = ctx
  const input = field(t('join.invite.label'), h('input', { type: 'text', name: 'invitation', autocomplete: 'off', spellcheck: false }))
  const form = h('form', { class: 'invite-form', novalidate: true, 'aria-labelledby': 'invite-title' },
    h('h2', { id: 'invite-title', text: t('join.invite.title') }),
    h('p', { text: t('join.invite.intro') }),
    input.wrapper,
    h('button', { type: 'submit', class: 'button primary', text: t('join.invite.submit') }))
  form.addEventListener('submit', (ev) => {
    ev.preventDefault()
    status.textContent = ''
    const token = tokenFromInput(input.control.value)
    try {
      const session = readInvitation(token)
      input.setError('')
      ctx.openLobby(session)
    } catch (err) {
      const expired = err instanceof InvitationError && err.kind === 'expired'
      input.setError(t(expired ? 'join.invite.expired' : 'join.invite.invalid'))
      input.control.focus()
    }
  })
  return form
}

function devForm (ctx, status) {
  const { t } = ctx
  const name = field(t('join.dev.name'), h('input', { type: 'text', name: 'name', autocomplete: 'name', required: true, maxLength: 64 }))
  const room = field(t('join.dev.room'), h('input', { type: 'text', name: 'room', value: 'demo', required: true, maxLength: 64, autocomplete: 'off' }))
  const roleSelect = h('select', { name: 'role' },
    roles.map((r) => h('option', { value: r, text: t(`role.${r}`), selected: r === 'member' })))
  const role = field(t('join.dev.role'), roleSelect)
  const seat = field(t('join.dev.seat'), h('input', { type: 'number', name: 'seat', min: 1, step: 1, inputMode: 'numeric' }), t('join.dev.seatHint'))
  const submit = h('button', { type: 'submit', class: 'button primary', text: t('join.dev.submit') })

  const form = h('form', { class: 'dev-form', novalidate: true },
    h('p', { class: 'intro', text: t('join.dev.intro') }),
    name.wrapper, room.wrapper, role.wrapper, seat.wrapper, submit)

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    status.textContent = ''
    const values = {
      name: name.control.value.trim(),
      room: room.control.value.trim(),
      role: roleSelect.value,
      seat: seat.control.value.trim() === '' ? null : Number(seat.control.value)
    }
    const problems = [
      [name, values.name ? '' : t('join.dev.nameRequired')],
      [room, values.room ? '' : t('join.dev.roomRequired')],
      [seat, values.seat === null || (Number.isInteger(values.seat) && values.seat > 0) ? '' : t('join.dev.seatInvalid')]
    ]
    for (const [f, msg] of problems) f.setError(msg)
    const firstBad = problems.find(([, msg]) => msg)
    if (firstBad) {
      firstBad[0].control.focus()
      return
    }
    submit.disabled = true
    try {
      const token = await mintDevInvitation(values)
      ctx.openLobby(readInvitation(token))
    } catch (err) {
      const why = err instanceof DevInvitationError ? t(devFailures[err.kind], { reason: err.detail }) : err.message
      status.textContent = t('join.dev.failed', { reason: why })
      submit.disabled = false
    }
  })
  return form
}
