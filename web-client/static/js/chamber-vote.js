// The vote as the chair and the clerk run it: recording the answers given aloud in the chamber
// (every seat in a roll call or a show of hands; in an electronic vote, the members in the
// chamber without a device), the ballots recorded so far, and closing the vote, which names the
// members who have not voted and asks to confirm them as taking no part.
import { h, uniqueId } from './dom.js'
import { choices, count, nonVoters, recordableVoters } from './council.js'
import { button, rowGroup, seatLabel } from './council-ui.js'

// In an electronic vote the one answering aloud votes for, against or abstains; taking no part
// is what the closing records for those who did not answer.
const chamberChoices = ['for', 'against', 'abstain']

// recordingDesk lists the pending voters whose answer this console records, each with a button
// per choice, then names those who vote from their own device.
export function recordingDesk (panel, view, vote, status) {
  const { t } = panel
  const pending = view.pendingVoters || []
  const recordable = recordableVoters(vote, pending, panel.me.seat)
  const electronic = vote.mode === 'electronic'
  const parts = []
  if (recordable.length) {
    const offered = electronic ? chamberChoices : choices
    parts.push(h('h4', { text: t(electronic ? 'council.vote.chamberHeading' : 'council.vote.callOut') }))
    if (electronic) parts.push(h('p', { class: 'hint', text: t('council.vote.chamberHint') }))
    parts.push(h('ul', { class: 'pending-voters' }, recordable.map((p) => {
      const who = seatLabel(t, view, p.seat)
      const by = p.castBy !== p.seat ? t('council.vote.byProxy', { name: seatLabel(t, view, p.castBy) }) : ''
      return h('li', { dataset: { seat: String(p.seat) } },
        rowGroup(`voter-${p.seat}`, who,
          h('span', { class: 'row-text' }, who, by ? h('span', { class: 'hint', text: ` ${by}` }) : null),
          h('span', { class: 'row-actions' }, offered.map((c) =>
            // Short visible words keep the answers on one line; the name says it in full.
            button(t(`council.choice.short.${c}`), () => panel.act(status, `/votes/${encodeURIComponent(vote.id)}/ballots`, { seat: p.seat, choice: c }),
              { key: `record-${p.seat}-${c}`, label: t(`council.choice.${c}`) })))))
    })))
  }
  const others = pending.filter((p) => !recordable.includes(p))
  if (others.length) parts.push(h('p', { class: 'hint', text: t('council.vote.awaiting', { names: others.map((p) => seatLabel(t, view, p.seat)).join(', ') }) }))
  if ((vote.ballots || []).length) {
    parts.push(h('details', { class: 'ballots-cast' },
      h('summary', { text: t('council.vote.ballotsCast', { n: count(vote).total }) }),
      h('ul', {}, vote.ballots.map((b) => h('li', { dataset: { seat: String(b.seat) }, text: ballotLine(t, view, b) })))))
  }
  return parts
}

// ballotLine says a ballot, and who recorded it when it was not the voter's own device.
function ballotLine (t, view, b) {
  const line = t('council.vote.ballotLine', { name: seatLabel(t, view, b.seat), choice: t(`council.choice.${b.choice}`) })
  if (!b.keyed) return line
  const by = b.recordedBy || {}
  const who = by.role === 'clerk' ? t('council.vote.byClerk') : by.seat ? seatLabel(t, view, by.seat) : t('council.vote.byChair')
  return t('council.vote.ballotKeyed', { line, by: who })
}

// closeVoteDesk is the chair's "close the vote" button with its confirmation: while members
// present or represented have not voted, a modal dialog names them, and the vote closes only
// once the chair confirms them as taking no part (the server checks the list again). The dialog
// is built once, outside the section's re-rendered area, so that a state arriving while it is
// open updates the names instead of destroying it.
export function closeVoteDesk (panel, sec) {
  const { t } = panel
  const titleId = uniqueId('close-vote-title')
  const textId = uniqueId('close-vote-text')
  const names = h('ul', { class: 'non-voters' })
  const status = h('p', { class: 'form-status council-status', role: 'alert' })
  const back = h('button', { type: 'button', class: 'button', text: t('council.vote.confirmBack'), dataset: { key: 'close-vote-back' } })
  const confirm = h('button', { type: 'button', class: 'button danger', text: t('council.vote.confirmClose'), dataset: { key: 'close-vote-confirm' } })
  const dialog = h('dialog', { class: 'council-dialog', 'aria-labelledby': titleId, 'aria-describedby': textId },
    h('h2', { id: titleId, text: t('council.vote.confirmTitle') }),
    h('p', { id: textId, text: t('council.vote.confirmText') }),
    names,
    h('p', { class: 'hint', text: t('council.vote.confirmMinutes') }),
    status,
    h('div', { class: 'actions' }, back, confirm))
  let shown = null // { vote, seats } while the dialog is open
  sec.root.append(dialog)

  const close = (path, body) => panel.act(sec.status, path, body)
  const fill = (view) => {
    const seats = nonVoters(view)
    shown.seats = seats
    names.replaceChildren(...seats.map((seat) => h('li', { dataset: { seat: String(seat) }, text: seatLabel(t, view, seat) })))
  }
  // After the dialog, focus goes back to the close button (re-rendered meanwhile), else to the
  // section's heading.
  const refocus = () => {
    const target = sec.live.querySelector('[data-key="close-vote"]') || sec.root.querySelector('h3')
    if (!target) return
    if (target.tagName === 'H3') target.tabIndex = -1
    target.focus()
  }
  dialog.addEventListener('close', () => {
    shown = null
    status.textContent = ''
    refocus()
  })
  back.addEventListener('click', () => dialog.close())
  confirm.addEventListener('click', async () => {
    if (!shown) return
    const { vote, seats } = shown
    confirm.disabled = true
    const ok = await panel.run(status, () => panel.client.act(`/votes/${encodeURIComponent(vote)}/close`, { nonVoters: seats }))
    confirm.disabled = false
    // A refusal (a member voted meanwhile) stays in the dialog, whose names the new state has
    // refreshed: the chair reads them and confirms again.
    if (ok) dialog.close()
  })

  return {
    button (view, vote) {
      return button(t('council.vote.close'), () => {
        const seats = nonVoters(view)
        if (!seats.length) return close(`/votes/${encodeURIComponent(vote.id)}/close`)
        shown = { vote: vote.id, seats }
        fill(panel.store.view || view)
        status.textContent = ''
        dialog.showModal()
        back.focus()
      }, { key: 'close-vote', cls: 'primary' })
    },
    update (view) {
      if (!shown) return
      if (view.openVote !== shown.vote) dialog.close()
      else fill(view)
    }
  }
}
