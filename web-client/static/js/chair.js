// The chair's console: the quorum gauge, the floor (control on/off, the queue, grant and
// withdraw), the open microphones (mute one), the agenda (add, open, close, postpone), votes
// (open with a mode, the live count, recording the answers given aloud in the chamber, close after
// confirming who has not voted) and the results; the bleep of the public programme, and handing
// the chair to another member.
import { h } from './dom.js'
import { nextVoteId, openItem, openVote, sessionClosed, voteModes } from './council.js'
import { agendaForm, agendaList } from './agenda.js'
import { minutesDesk } from './clerk.js'
import { bleepDesk } from './bleep.js'
import { closeVoteDesk, recordingDesk } from './chamber-vote.js'
import { button, labelled, quorumGauge, resultSection, rowGroup, seatLabel, section, sessionHeader, setOptions, timeText, voteCount, voteTitle } from './council-ui.js'

export function chairConsole (panel) {
  const { t, lang } = panel
  const header = sessionHeader(t, lang)
  const sessionSec = section(t('council.session.heading'), 'session-actions')
  const gauge = quorumGauge(t)
  const floorSec = section(t('council.floor.title'), 'floor')
  const micSec = section(t('council.mics.heading'), 'mics')
  let micsShown = null // the list last rendered, to skip identical re-renders
  const agenda = agendaList(panel, { chair: true })
  const addItem = agendaForm(panel)
  const voteSec = section(t('council.vote.heading'), 'vote')
  const openVoteForm = voteOpener(panel, voteSec)
  const resultSec = resultSection(t)
  const minutes = minutesDesk(panel)
  const bleep = bleepDesk(panel)
  const handover = chairHandover(panel)
  voteSec.root.append(openVoteForm.root)
  const closer = closeVoteDesk(panel, voteSec)
  let confirmingClose = false

  // Closing the sitting cannot be undone, so it takes a second, explicit click.
  function renderSession (view) {
    if (sessionClosed(view)) {
      sessionSec.render(h('p', { text: t('council.session.closedAt', { time: timeText(lang, view.session.closedAt) }) }))
      return
    }
    const ask = (on) => () => {
      confirmingClose = on
      renderSession(panel.store.view)
      sessionSec.live.querySelector(on ? '[data-key="confirm-close"]' : '[data-key="close-session"]')?.focus()
    }
    sessionSec.render(confirmingClose
      ? [h('p', { class: 'attention', text: t('council.session.confirmText') }),
          h('div', { class: 'actions' },
            button(t('council.session.confirm'), async () => {
              confirmingClose = false
              await panel.act(sessionSec.status, '/session/close')
            }, { key: 'confirm-close', cls: 'danger' }),
            button(t('council.session.keepOpen'), ask(false), { key: 'keep-open' }))]
      : button(t('council.session.close'), ask(true), { key: 'close-session', cls: 'danger' }))
  }

  function renderFloor (view) {
    const f = view.floor || {}
    if (sessionClosed(view)) {
      floorSec.render(h('p', { class: 'hint', text: t('council.floor.nobody') }))
      return
    }
    const parts = [
      h('div', { class: 'floor-control' },
        button(t('council.floor.control'), () => panel.act(floorSec.status, '/floor/control', { enabled: !f.controlled }), { key: 'floor-control', pressed: Boolean(f.controlled) }),
        h('span', { class: 'floor-control-state', dataset: { on: String(Boolean(f.controlled)) }, text: t(f.controlled ? 'council.floor.controlOn' : 'council.floor.controlOff') }))
    ]
    if (f.holder) {
      parts.push(h('p', { class: 'floor-holder', dataset: { seat: String(f.holder) } },
        t(f.kind === 'point-of-order' ? 'council.floor.holderOrder' : 'council.floor.holder', { name: seatLabel(t, view, f.holder), time: timeText(lang, f.since) })),
      button(t('council.floor.withdraw'), () => panel.act(floorSec.status, '/floor/end'), { key: 'withdraw' }))
    } else {
      parts.push(h('p', { class: 'hint', text: t('council.floor.nobody') }))
    }
    const queue = f.queue || []
    parts.push(h('h4', { text: t('council.floor.queue', { n: queue.length }) }))
    if (queue.length) {
      parts.push(h('ol', { class: 'floor-queue' }, queue.map((r) => {
        const who = seatLabel(t, view, r.seat)
        return h('li', { dataset: { seat: String(r.seat), kind: r.kind } },
          rowGroup(`queue-${r.seat}`, who,
            h('span', { class: 'row-text' }, who, r.kind === 'point-of-order' ? h('strong', { class: 'tag', text: t('council.floor.orderTag') }) : null),
            h('span', { class: 'row-actions' },
              button(t('council.floor.grant'), () => panel.act(floorSec.status, '/floor/grant', { seat: r.seat }), { key: `grant-${r.seat}`, cls: 'primary' }),
              button(t('council.floor.dismiss'), () => panel.act(floorSec.status, '/floor/cancel', { seat: r.seat }), { key: `dismiss-${r.seat}` }))))
      })))
    }
    floorSec.render(parts)
  }

  // renderMics lists whoever has a microphone open, each with the chair's mute (POST /mute).
  function renderMics () {
    const mics = panel.room.openMics()
    const signature = JSON.stringify(mics)
    if (signature === micsShown) return
    micsShown = signature
    micSec.render(mics.length
      ? h('ul', { class: 'open-mics' }, mics.map((m) => h('li', { dataset: { identity: m.identity } },
        rowGroup(`mic-${m.identity}`, m.name,
          h('span', { class: 'row-text' }, h('span', { text: m.name }), h('span', { class: 'hint', text: m.detail })),
          h('span', { class: 'row-actions' },
            button(t('council.mics.mute'), async () => {
              const ok = await panel.run(micSec.status, () => panel.client.mute(m.identity))
              if (ok) panel.ctx.announce(t('announce.mutedOther', { name: m.name }))
            }, { key: `mute-${m.identity}` }))))))
      : h('p', { class: 'hint', text: t('council.mics.none') }))
  }

  function renderVote (view) {
    const vote = openVote(view)
    const item = openItem(view)
    openVoteForm.update(view, !vote && item && !sessionClosed(view))
    if (!vote) {
      voteSec.render(h('p', { class: 'hint', text: t(item ? 'council.vote.noneOpen' : 'council.vote.needItem') }))
      return
    }
    const pending = view.pendingVoters || []
    const parts = [h('p', { class: 'vote-heading', text: voteTitle(t, vote) }), voteCount(t, vote, pending.length)]
    if (vote.mode === 'secret') {
      parts.push(h('p', { text: vote.tally ? t('council.vote.tallyDone', vote.tally) : t('council.vote.tallyAwaited') }))
    } else {
      parts.push(...recordingDesk(panel, view, vote, voteSec.status))
    }
    parts.push(closer.button(view, vote))
    voteSec.render(parts)
  }

  return {
    // The bleep comes first: when it is needed, it is needed at once.
    root: h('div', { class: 'council-chair' }, header.root, bleep.root, gauge.root, floorSec.root, micSec.root, agenda.root, addItem.root, resultSec.root, voteSec.root, handover.root, sessionSec.root, minutes.root),
    update (view) {
      header.update(view)
      handover.update(view)
      gauge.update(view)
      renderFloor(view)
      renderMics()
      agenda.update(view)
      addItem.update(view)
      renderVote(view)
      closer.update(view)
      resultSec.update(view)
      renderSession(view)
    },
    participantsChanged: renderMics,
    dispose () {
      bleep.dispose()
    }
  }
}

// chairHandover hands the chair to another member present (POST /chair), e.g. while the council
// debates the accounts of the one presiding. The chair's console stays with the chair's
// invitation, and a member presiding has one too until they hand the chair back; the seat
// presiding is what the server checks and the minutes record.
function chairHandover (panel) {
  const { t } = panel
  const sec = section(t('council.handover.heading'), 'handover')
  const who = h('p', { class: 'presiding' })
  const seat = h('select', { name: 'handover-seat' })
  const submit = h('button', { type: 'submit', class: 'button', text: t('council.handover.submit') })
  const form = h('form', { class: 'council-form handover-form', novalidate: true },
    labelled(t('council.handover.to'), seat, t(panel.me.role === 'chair' ? 'council.handover.hint' : 'council.handover.hintPresiding')),
    h('div', { class: 'actions' }, submit))
  const none = h('p', { class: 'hint', text: t('council.handover.nobody'), hidden: true })
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    if (!seat.value) {
      sec.status.textContent = t('council.handover.pick')
      return
    }
    await panel.act(sec.status, '/chair', { seat: Number(seat.value) })
  })
  sec.render(who, form, none)
  return {
    root: sec.root,
    update (view) {
      const chair = view.session?.chair
      who.textContent = chair ? t('council.handover.presiding', { name: seatLabel(t, view, chair) }) : ''
      // The server accepts members present in the chamber or verified at a distance.
      const candidates = (view.seats || []).filter((s) => !s.vacant && s.seat !== chair && ['chamber', 'remote'].includes(s.presence))
      setOptions(seat, candidates.map((s) => ({ value: String(s.seat), text: seatLabel(t, view, s.seat) })), t('council.proxy.choose'))
      const closed = sessionClosed(view)
      sec.root.hidden = closed
      form.hidden = candidates.length === 0
      none.hidden = candidates.length > 0
    }
  }
}

// voteOpener is the form that opens a vote on the item under discussion; it is built once, so
// what the chair types survives the state changes that arrive meanwhile.
function voteOpener (panel, voteSec) {
  const { t } = panel
  const id = h('input', { type: 'text', name: 'vote-id', maxLength: 32, autocomplete: 'off' })
  const question = h('input', { type: 'text', name: 'vote-question', maxLength: 300 })
  const mode = h('select', { name: 'vote-mode' })
  setOptions(mode, voteModes.map((m) => ({ value: m, text: t(`council.mode.${m}`) })))
  const submit = h('button', { type: 'submit', class: 'button primary', text: t('council.vote.open') })
  const root = h('form', { class: 'council-form vote-open', novalidate: true, hidden: true },
    h('h4', { text: t('council.vote.openHeading') }),
    h('div', { class: 'field-row' },
      labelled(t('council.vote.id'), id),
      labelled(t('council.vote.mode'), mode)),
    labelled(t('council.vote.question'), question),
    h('p', { class: 'hint', text: t('council.vote.modeHint') }),
    h('div', { class: 'actions' }, submit))
  let forItem = null
  root.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    const item = forItem
    if (!item) return
    submit.disabled = true
    const ok = await panel.act(voteSec.status, '/votes', { id: id.value.trim() || nextVoteId(panel.store.view, item), item, mode: mode.value, question: question.value.trim() })
    submit.disabled = false
    if (ok) question.value = ''
  })
  return {
    root,
    update (view, show) {
      const item = openItem(view)
      root.hidden = !show
      if (!show) return
      // A new item, or the last vote's id taken: propose the next free id.
      if (forItem !== item.id || (view.votes || []).some((v) => v.id === id.value.trim())) id.value = nextVoteId(view, item.id)
      forItem = item.id
    }
  }
}
