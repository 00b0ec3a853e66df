// The member's panel: one's seat and presence, asking for the floor (or a point of order),
// "you have the floor", voting for oneself and for each seat whose proxy one holds, the result.
// Also the read-only summary shown to every other role (agents, interpreters, the public).
import { h } from './dom.js'
import { ballotsOf, choices, hasFloor, latestResult, openItem, openVote, queuePosition, seatOf, sessionClosed } from './council.js'
import { button, quorumLine, resultBlock, resultSection, section, seatLabel, sessionHeader, timeText, voteCount, voteTitle } from './council-ui.js'

export function memberPanel (panel) {
  const { t, lang } = panel
  const mySeat = panel.me.seat
  const header = sessionHeader(t, lang)
  const seatSec = section(t('council.me.title'), 'my-seat')
  const floorSec = section(t('council.floor.title'), 'floor')
  const voteSec = section(t('council.vote.heading'), 'vote')
  const resultSec = resultSection(t)
  const picked = new Map() // `${vote}/${seat}` → the choice ticked but not yet cast
  let last = null

  function renderSeat (view) {
    const me = seatOf(view, mySeat)
    if (!mySeat || !me) {
      seatSec.render(h('p', { class: 'attention', text: mySeat ? t('council.me.notInRoster', { seat: mySeat }) : t('council.me.noSeat') }))
      return
    }
    seatSec.render(
      h('p', { class: 'my-seat-name', text: seatLabel(t, view, mySeat) }),
      h('p', { class: 'presence', dataset: { presence: me.presence }, text: presenceText(t, lang, view, me) }),
      me.presence === 'remote-unverified' ? h('p', { class: 'attention', text: t('council.me.awaitVerification') }) : null,
      (me.holds || []).length ? h('p', { text: t('council.me.holds', { seats: me.holds.map((s) => seatLabel(t, view, s)).join(', ') }) }) : null,
      quorumLine(t, view),
      openItem(view) ? h('p', { text: t('council.item.current', { title: openItem(view).title }) }) : null)
  }

  function renderFloor (view) {
    const f = view.floor || {}
    const parts = []
    if (f.controlled) parts.push(h('p', { class: 'floor-control-note', text: t('council.floor.controlledNote') }))
    if (hasFloor(view, mySeat)) {
      const micOn = panel.room.micEnabled()
      parts.push(
        h('p', { class: 'you-have-floor', dataset: { state: 'holder' } }, h('strong', { text: t('council.floor.youHave') })),
        micOn
          ? h('p', { text: t('council.floor.micIsOn') })
          : button(t('council.floor.openMic'), () => panel.room.setMic(true), { key: 'open-mic', cls: 'primary' }),
        button(t('council.floor.yield'), () => panel.act(floorSec.status, '/floor/end'), { key: 'yield' }))
    } else {
      if (f.holder) parts.push(h('p', { text: t('council.floor.heldBy', { name: seatLabel(t, view, f.holder) }) }))
      const pos = queuePosition(view, mySeat)
      if (pos) {
        const req = f.queue[pos - 1]
        parts.push(
          h('p', { class: 'queue-place', dataset: { state: 'waiting' }, text: t(req.kind === 'point-of-order' ? 'council.floor.waitingOrder' : 'council.floor.waiting', { pos }) }),
          button(t('council.floor.cancel'), () => panel.act(floorSec.status, '/floor/cancel'), { key: 'cancel' }))
      } else if (!sessionClosed(view)) {
        parts.push(h('div', { class: 'actions' },
          button(t('council.floor.raise'), () => panel.act(floorSec.status, '/floor/request', {}), { key: 'raise', cls: 'primary' }),
          button(t('council.floor.pointOfOrder'), () => panel.act(floorSec.status, '/floor/request', { kind: 'point-of-order' }), { key: 'order' })))
      }
    }
    floorSec.render(parts)
  }

  function renderVote (view) {
    const vote = openVote(view)
    if (!vote) {
      voteSec.render(h('p', { class: 'hint', text: t('council.vote.none') }))
      return
    }
    const parts = [h('p', { class: 'vote-heading', text: voteTitle(t, vote) })]
    if (vote.mode === 'secret') {
      parts.push(h('p', { text: t('council.vote.secretPaper') }))
      voteSec.render(parts)
      return
    }
    const mine = ballotsOf(view, mySeat)
    if (!mine.length) parts.push(h('p', { class: 'attention', text: t('council.vote.cannot') }))
    for (const b of mine) {
      const who = b.own ? t('council.vote.forSelf') : t('council.vote.forProxy', { name: seatLabel(t, view, b.seat) })
      if (b.ballot) {
        parts.push(h('p', { class: 'ballot-cast', dataset: { seat: String(b.seat), choice: b.ballot.choice } },
          t('council.vote.cast', { who, choice: t(`council.choice.${b.ballot.choice}`) })))
        continue
      }
      const key = `${vote.id}/${b.seat}`
      const radioName = `ballot-${vote.id}-${b.seat}`
      const radios = choices.map((c) => {
        const input = h('input', {
          type: 'radio',
          name: radioName,
          value: c,
          id: `${radioName}-${c}`,
          checked: picked.get(key) === c,
          dataset: { key: `radio-${key}-${c}` },
          onchange: () => picked.set(key, c)
        })
        return h('div', { class: 'check' }, input, h('label', { for: input.id, text: t(`council.choice.${c}`) }))
      })
      const cast = button(b.own ? t('council.vote.submitSelf') : t('council.vote.submitProxy', { seat: b.seat }), async () => {
        const choice = picked.get(key)
        if (!choice) {
          voteSec.status.textContent = t('council.vote.pickFirst')
          return
        }
        const ok = await panel.act(voteSec.status, `/votes/${encodeURIComponent(vote.id)}/ballots`, b.own ? { choice } : { seat: b.seat, choice })
        if (ok) panel.ctx.announce(t('council.vote.recorded', { who, choice: t(`council.choice.${choice}`) }))
      }, { key: `cast-${key}`, cls: 'primary' })
      parts.push(h('fieldset', { class: 'ballot', dataset: { seat: String(b.seat) } },
        h('legend', { text: who }), ...radios, cast))
    }
    parts.push(voteCount(t, vote, (view.pendingVoters || []).length))
    voteSec.render(parts)
  }

  return {
    root: h('div', { class: 'council-member' }, header.root, seatSec.root, floorSec.root, voteSec.root, resultSec.root),
    update (view) {
      last = view
      header.update(view)
      renderSeat(view)
      renderFloor(view)
      renderVote(view)
      resultSec.update(view)
    },
    localMediaChanged () {
      if (last) renderFloor(last)
    }
  }
}

export function presenceText (t, lang, view, s) {
  switch (s.presence) {
    case 'chamber': return t('council.presence.chamber', { time: timeText(lang, s.since) })
    case 'remote': return t('council.presence.remote', { time: timeText(lang, s.since) })
    case 'remote-unverified': return t('council.presence.unverified')
    case 'represented': return t('council.presence.represented', { name: seatLabel(t, view, s.representedBy) })
    default: return t(s.vacant ? 'council.presence.vacant' : 'council.presence.absent')
  }
}

// summaryPanel is what anyone without a council role sees: the sitting as it goes.
export function summaryPanel (panel) {
  const { t, lang } = panel
  const header = sessionHeader(t, lang)
  const now = section(t('council.summary.title'), 'summary')
  return {
    root: h('div', { class: 'council-summary' }, header.root, now.root),
    update (view) {
      header.update(view)
      const item = openItem(view)
      const vote = openVote(view)
      const r = latestResult(view)
      now.render(
        quorumLine(t, view),
        item ? h('p', { text: t('council.item.current', { title: item.title }) }) : null,
        view.floor?.holder ? h('p', { text: t('council.floor.heldBy', { name: seatLabel(t, view, view.floor.holder) }) }) : null,
        vote ? h('p', { text: voteTitle(t, vote) }) : null,
        vote ? voteCount(t, vote, (view.pendingVoters || []).length) : null,
        r ? resultBlock(t, view, r) : null)
    }
  }
}
