// The agenda: the list of items with the chair's actions (open, close, postpone, a request for a
// secret ballot) and the form that adds an item (chair or clerk).
import { h } from './dom.js'
import { nextItemId, openItem, openVote, sessionClosed } from './council.js'
import { button, checkbox, labelled, rowGroup, section, setOptions, timeText } from './council-ui.js'

export function agendaList (panel, { chair }) {
  const { t, lang } = panel
  const sec = section(t('council.item.heading'), 'agenda')

  // Postponing needs a reason, typed in a form kept out of the re-rendered list.
  const postponeItem = h('select', { name: 'postpone-item' })
  const reason = h('input', { type: 'text', name: 'postpone-reason', maxLength: 300 })
  const postponeSubmit = h('button', { type: 'submit', class: 'button', text: t('council.item.postponeSubmit') })
  const postpone = h('form', { class: 'council-form postpone', novalidate: true, hidden: true },
    h('h4', { text: t('council.item.postponeHeading') }),
    labelled(t('council.item.postponeWhich'), postponeItem),
    labelled(t('council.item.postponeReason'), reason),
    h('div', { class: 'actions' }, postponeSubmit))
  postpone.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    if (!postponeItem.value) return
    const ok = await panel.act(sec.status, `/items/${encodeURIComponent(postponeItem.value)}/postpone`, { reason: reason.value.trim() })
    if (ok) reason.value = ''
  })

  // A secret ballot asked for by members present, on the item under discussion.
  const requesters = h('input', { type: 'number', name: 'secret-requesters', min: 1, step: 1, inputMode: 'numeric' })
  const secret = h('form', { class: 'council-form secret-request', novalidate: true },
    labelled(t('council.item.secretRequesters'), requesters, t('council.item.secretHint')),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button', text: t('council.item.secretSubmit') })))
  secret.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    const item = openItem(panel.store.view)
    if (!item) return
    const ok = await panel.act(sec.status, `/items/${encodeURIComponent(item.id)}/secret-ballot`, { requesters: Number(requesters.value) || 0 })
    if (ok) requesters.value = ''
  })
  // Rare, so folded away until needed.
  const secretBox = h('details', { class: 'secret-box', hidden: true }, h('summary', { text: t('council.item.secretHeading') }), secret)
  if (chair) sec.root.append(postpone, secretBox)

  return {
    root: sec.root,
    update (view) {
      const items = view.items || []
      const closed = sessionClosed(view)
      const rows = items.map((it) => {
        const label = t('council.item.label', { id: it.id, title: it.title })
        const actions = []
        if (chair && !closed) {
          if (it.status === 'pending') actions.push(button(t('council.item.open'), () => panel.act(sec.status, `/items/${encodeURIComponent(it.id)}/open`), { key: `open-${it.id}`, cls: 'primary' }))
          if (it.status === 'open') actions.push(button(t('council.item.close'), () => panel.act(sec.status, `/items/${encodeURIComponent(it.id)}/close`), { key: `close-${it.id}` }))
          if (it.status === 'pending' || it.status === 'open') {
            actions.push(button(t('council.item.postpone'), () => {
              postpone.hidden = false
              postponeItem.value = it.id
              reason.focus()
            }, { key: `postpone-${it.id}` }))
          }
        }
        return h('li', { dataset: { item: it.id, status: it.status } },
          rowGroup(`item-${it.id}`, label,
            h('span', { class: 'row-text' },
              h('span', { class: 'item-title', text: label }),
              h('span', { class: 'item-status', text: itemStatus(t, lang, it) }),
              it.inPersonOnly ? h('span', { class: 'tag', text: t('council.item.inPerson') }) : null),
            actions.length ? h('span', { class: 'row-actions' }, actions) : null))
      })
      sec.render(items.length ? h('ol', { class: 'agenda-items' }, rows) : h('p', { class: 'hint', text: t('council.item.none') }))
      if (!chair) return
      const movable = items.filter((it) => it.status === 'pending' || it.status === 'open')
      setOptions(postponeItem, movable.map((it) => ({ value: it.id, text: t('council.item.label', { id: it.id, title: it.title }) })))
      if (!movable.length || closed) postpone.hidden = true
      secretBox.hidden = closed || !openItem(view) || Boolean(openVote(view))
    }
  }
}

function itemStatus (t, lang, it) {
  switch (it.status) {
    case 'open': return t('council.item.statusOpen', { time: timeText(lang, it.openedAt) })
    case 'closed': return t('council.item.statusClosed', { time: timeText(lang, it.closedAt) })
    case 'postponed': return it.postponeReason ? t('council.item.statusPostponedWhy', { reason: it.postponeReason }) : t('council.item.statusPostponed')
    default: return t('council.item.statusPending')
  }
}

// agendaForm adds an item; its fields keep what is typed while the state moves on.
export function agendaForm (panel) {
  const { t } = panel
  const id = h('input', { type: 'text', name: 'item-id', maxLength: 32, autocomplete: 'off' })
  const title = h('input', { type: 'text', name: 'item-title', maxLength: 300, required: true })
  const kind = h('input', { type: 'text', name: 'item-kind', maxLength: 64, autocomplete: 'off' })
  const inPerson = h('input', { type: 'checkbox', name: 'item-in-person' })
  const status = h('p', { class: 'form-status', role: 'alert' })
  const form = h('form', { class: 'council-form add-item', novalidate: true },
    h('div', { class: 'field-row' },
      labelled(t('council.item.id'), id),
      labelled(t('council.item.title'), title)),
    labelled(t('council.item.kind'), kind, t('council.item.kindHint')),
    checkbox(t('council.item.inPersonOnly'), inPerson),
    status,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button primary', text: t('council.item.add') })))
  const root = h('details', { class: 'council-section add-item-box' }, h('summary', { text: t('council.item.addHeading') }), form)
  let proposed = ''
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    if (!title.value.trim()) {
      status.textContent = t('council.item.needTitle')
      title.setAttribute('aria-invalid', 'true')
      title.focus()
      return
    }
    title.removeAttribute('aria-invalid')
    const body = { id: id.value.trim() || nextItemId(panel.store.view), title: title.value.trim() }
    if (kind.value.trim()) body.kind = kind.value.trim()
    if (inPerson.checked) body.inPersonOnly = true
    const ok = await panel.act(status, '/items', body)
    if (ok) {
      title.value = ''
      kind.value = ''
      inPerson.checked = false
      panel.ctx.announce(t('council.item.added', { title: body.title }))
    }
  })
  return {
    root,
    update (view) {
      root.hidden = sessionClosed(view)
      // Propose the next free id unless the person typed their own.
      if (id.value === proposed || (view.items || []).some((i) => i.id === id.value)) {
        proposed = nextItemId(view)
        id.value = proposed
      }
    }
  }
}
