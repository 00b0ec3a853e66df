// The clerk's panel: the roll call (arrivals in the chamber, departures, verifying the identity
// of each member who joined from afar), proxies, the agenda, the answers given aloud in the
// chamber during a vote, the tellers' count of a secret ballot, and the minutes to download.
import { h } from './dom.js'
import { openVote, sessionClosed } from './council.js'
import { agendaForm, agendaList } from './agenda.js'
import { presenceText } from './member.js'
import { recordingDesk } from './chamber-vote.js'
import { button, labelled, quorumGauge, resultSection, rowGroup, saveText, seatLabel, section, sessionHeader, setOptions, voteCount, voteTitle } from './council-ui.js'

export function clerkPanel (panel) {
  const { t, lang } = panel
  const header = sessionHeader(t, lang)
  const gauge = quorumGauge(t)
  const rollSec = section(t('council.roll.heading'), 'roll-call')
  const proxies = proxyDesk(panel)
  const agenda = agendaList(panel, { chair: false })
  const addItem = agendaForm(panel)
  const voteSec = section(t('council.vote.heading'), 'vote')
  const tally = tallyForm(panel, voteSec)
  voteSec.root.append(tally.root)
  const resultSec = resultSection(t)
  const minutes = minutesDesk(panel)

  function renderRoll (view) {
    const closed = sessionClosed(view)
    const unverified = (view.seats || []).filter((s) => s.presence === 'remote-unverified')
    const rows = (view.seats || []).map((s) => {
      const who = seatLabel(t, view, s.seat)
      const actions = []
      const act = (path, body) => () => panel.act(rollSec.status, path, body)
      if (!closed && !s.vacant) {
        if (s.presence === 'absent' || s.presence === 'represented') {
          actions.push(
            button(t('council.roll.chamber'), act('/attendance/arrival', { seat: s.seat, place: 'chamber' }), { key: `chamber-${s.seat}`, cls: 'primary' }),
            button(t('council.roll.remote'), act('/attendance/arrival', { seat: s.seat, place: 'remote' }), { key: `remote-${s.seat}` }))
        }
        if (s.presence === 'remote-unverified') {
          actions.push(button(t('council.roll.verify'), act('/attendance/verify', { seat: s.seat }), { key: `verify-${s.seat}`, cls: 'primary' }))
        }
        if (['chamber', 'remote', 'remote-unverified'].includes(s.presence)) {
          actions.push(button(t('council.roll.departure'), act('/attendance/departure', { seat: s.seat }), { key: `depart-${s.seat}` }))
        }
      }
      return h('li', { dataset: { seat: String(s.seat), presence: s.presence } },
        rowGroup(`seat-${s.seat}`, who,
          h('span', { class: 'row-text' },
            h('span', { class: 'seat-name', text: who }),
            s.group ? h('span', { class: 'hint', text: s.group }) : null,
            h('span', { class: 'presence', text: presenceText(t, lang, view, s) })),
          actions.length ? h('span', { class: 'row-actions' }, actions) : null))
    })
    rollSec.render(
      unverified.length ? h('p', { class: 'attention', text: t('council.roll.toVerify', { names: unverified.map((s) => seatLabel(t, view, s.seat)).join(', ') }) }) : null,
      h('ul', { class: 'roll' }, rows))
  }

  // The clerk records the answers given aloud in the chamber, as the chair does; closing is the
  // chair's.
  function renderVote (view) {
    const vote = openVote(view)
    tally.update(view)
    voteSec.render(vote
      ? [h('p', { class: 'vote-heading', text: voteTitle(t, vote) }), voteCount(t, vote, (view.pendingVoters || []).length),
          ...(vote.mode === 'secret' ? [] : recordingDesk(panel, view, vote, voteSec.status))]
      : h('p', { class: 'hint', text: t('council.vote.none') }))
  }

  return {
    root: h('div', { class: 'council-clerk' }, header.root, gauge.root, rollSec.root, proxies.root, agenda.root, addItem.root, voteSec.root, resultSec.root, minutes.root),
    update (view) {
      header.update(view)
      gauge.update(view)
      renderRoll(view)
      proxies.update(view)
      agenda.update(view)
      addItem.update(view)
      renderVote(view)
      resultSec.update(view)
    }
  }
}

// proxyDesk records a written proxy (giver → holder) and lists those in force.
function proxyDesk (panel) {
  const { t } = panel
  const sec = section(t('council.proxy.heading'), 'proxies')
  const giver = h('select', { name: 'proxy-giver' })
  const holder = h('select', { name: 'proxy-holder' })
  const submit = h('button', { type: 'submit', class: 'button primary', text: t('council.proxy.submit') })
  const form = h('form', { class: 'council-form proxy-form', novalidate: true },
    labelled(t('council.proxy.giver'), giver),
    labelled(t('council.proxy.holder'), holder),
    h('div', { class: 'actions' }, submit))
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    if (!giver.value || !holder.value) {
      sec.status.textContent = t('council.proxy.pickBoth')
      return
    }
    const ok = await panel.act(sec.status, '/proxies', { giver: Number(giver.value), holder: Number(holder.value) })
    if (ok) panel.ctx.announce(t('council.proxy.recorded'))
  })
  sec.root.append(form)
  return {
    root: sec.root,
    update (view) {
      const seats = (view.seats || []).filter((s) => !s.vacant)
      const opt = (s) => ({ value: String(s.seat), text: seatLabel(t, view, s.seat) })
      // Any member may be named as giver (the server says if they cannot); holders must be present.
      setOptions(giver, seats.filter((s) => s.presence === 'absent' || s.presence === 'represented').map(opt), t('council.proxy.choose'))
      setOptions(holder, seats.filter((s) => ['chamber', 'remote'].includes(s.presence)).map(opt), t('council.proxy.choose'))
      form.hidden = sessionClosed(view)
      const inForce = (view.proxies || []).filter((p) => !p.endedAt)
      sec.render(inForce.length
        ? h('ul', { class: 'proxy-list' }, inForce.map((p) => {
          const text = t(p.item ? 'council.proxy.lineItem' : 'council.proxy.line', { giver: seatLabel(t, view, p.giver), holder: seatLabel(t, view, p.holder), item: p.item || '' })
          return h('li', { dataset: { giver: String(p.giver) } },
            rowGroup(`proxy-${p.giver}`, text,
              h('span', { class: 'row-text', text }),
              sessionClosed(view) ? null : h('span', { class: 'row-actions' }, button(t('council.proxy.revoke'), () => panel.act(sec.status, '/proxies/revoke', { giver: p.giver }), { key: `revoke-${p.giver}` }))))
        }))
        : h('p', { class: 'hint', text: t('council.proxy.none') }))
    }
  }
}

// tallyForm records the tellers' count of a secret ballot held on paper in the chamber.
function tallyForm (panel, voteSec) {
  const { t } = panel
  const num = (name) => h('input', { type: 'number', name, min: 0, step: 1, inputMode: 'numeric', value: '0' })
  const fields = { for: num('tally-for'), against: num('tally-against'), blank: num('tally-blank') }
  const root = h('form', { class: 'council-form tally', novalidate: true, hidden: true },
    h('h4', { text: t('council.tally.heading') }),
    labelled(t('council.tally.for'), fields.for),
    labelled(t('council.tally.against'), fields.against),
    labelled(t('council.tally.blank'), fields.blank),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'button primary', text: t('council.tally.submit') })))
  root.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    const vote = openVote(panel.store.view)
    if (!vote) return
    const body = Object.fromEntries(Object.entries(fields).map(([k, el]) => [k, Number(el.value) || 0]))
    await panel.act(voteSec.status, `/votes/${encodeURIComponent(vote.id)}/tally`, body)
  })
  return {
    root,
    update (view) {
      const vote = openVote(view)
      root.hidden = !(vote && vote.mode === 'secret' && !vote.tally)
    }
  }
}

// minutesDesk downloads the draft minutes, in the page's language (the chair's console has it too).
export function minutesDesk (panel) {
  const { t } = panel
  const sec = section(t('council.minutes.heading'), 'minutes')
  const get = (format) => async () => {
    await panel.run(sec.status, async () => {
      const { text, type } = await panel.client.minutes(format, panel.lang)
      saveText(text, type, `${t('council.minutes.file')}-${panel.session.room}.${format}`)
      panel.ctx.announce(t('council.minutes.saved', { format: format === 'md' ? 'Markdown' : 'HTML' }))
    })
  }
  sec.render(
    h('p', { class: 'hint', text: t('council.minutes.intro') }),
    h('div', { class: 'actions' },
      button(t('council.minutes.md'), get('md'), { key: 'minutes-md' }),
      button(t('council.minutes.html'), get('html'), { key: 'minutes-html' })))
  return { root: sec.root }
}
