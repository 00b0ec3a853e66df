// Building blocks shared by the chair's console, the clerk's panel and the member's panel:
// re-rendering that keeps the keyboard focus, the quorum gauge, vote counts and results.
import { h, uniqueId } from './dom.js'
import { count, latestResult, seatName } from './council.js'

// replaceKeepingFocus swaps a container's content after a state change without throwing the
// keyboard user out: the control that had focus (by its data-key) gets it back; when it is gone
// (a "grant" button once the floor is granted) its row takes focus, or the row now in its place
// (the next voter to call), so that Tab continues from there; failing that, the section's
// heading. Focus never lands on another action, where a second Enter would do something else.
export function replaceKeepingFocus (el, children) {
  const active = document.activeElement
  const inside = active && active !== el && el.contains(active)
  const key = inside ? active.dataset.key : null
  const rowEl = inside ? active.closest('[data-row]') : null
  const rows = rowEl ? [...el.querySelectorAll('[data-row]')] : []
  const rowIndex = rowEl ? rows.indexOf(rowEl) : -1
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false))
  if (!inside) return
  const again = key ? el.querySelector(`[data-key="${CSS.escape(key)}"]`) : null
  if (again && !again.disabled) {
    again.focus()
    return
  }
  if (rowEl) {
    const now = [...el.querySelectorAll('[data-row]')]
    const target = now.find((r) => r.dataset.row === rowEl.dataset.row) || now[Math.min(rowIndex, now.length - 1)]
    if (target) {
      target.tabIndex = -1
      target.focus()
      return
    }
  }
  const heading = el.closest('section')?.querySelector('h3')
  if (heading) {
    heading.tabIndex = -1
    heading.focus()
  }
}

// section makes a titled part of a panel with a live area (re-rendered on each state) and a
// status line where refusals are read out.
export function section (title, cls) {
  const id = uniqueId('council-sec')
  const live = h('div', { class: 'council-live' })
  const status = h('p', { class: 'form-status council-status', role: 'alert' })
  const root = h('section', { class: `council-section ${cls || ''}`, 'aria-labelledby': id },
    h('h3', { id, text: title }), status, live)
  return {
    root,
    live,
    status,
    render (...children) { replaceKeepingFocus(live, children) }
  }
}

// rowGroup is one line of a list (a seat, a request, an item) whose actions are named by it: a
// screen reader hears "Anne Morel (siège 1), group" before "En salle, button".
export function rowGroup (key, label, ...children) {
  return h('div', { role: 'group', 'aria-label': label, class: 'row', dataset: { row: key } }, ...children)
}

export function button (text, onclick, { key, cls = '', label, pressed, disabled } = {}) {
  return h('button', {
    type: 'button',
    class: `button small ${cls}`.trim(),
    text,
    onclick,
    dataset: key ? { key } : undefined,
    'aria-label': label,
    'aria-pressed': pressed === undefined ? null : String(pressed),
    disabled: disabled || null
  })
}

// labelled wraps a control with its label (and an optional hint) in the form's layout.
export function labelled (text, control, hint) {
  control.id = control.id || uniqueId('cf')
  const hintEl = hint ? h('p', { class: 'hint', id: `${control.id}-hint`, text: hint }) : null
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id)
  return h('div', { class: 'field' }, h('label', { for: control.id, text }), hintEl, control)
}

export function checkbox (text, control) {
  control.id = control.id || uniqueId('cf')
  return h('div', { class: 'check' }, control, h('label', { for: control.id, text }))
}

// setOptions refills a <select> while keeping its current choice when it is still offered.
export function setOptions (select, options, placeholder) {
  const keep = select.value
  const list = placeholder ? [{ value: '', text: placeholder }, ...options] : options
  const same = select.options.length === list.length && list.every((o, i) => select.options[i].value === o.value && select.options[i].text === o.text)
  if (same) return
  select.replaceChildren(...list.map((o) => h('option', { value: o.value, text: o.text })))
  if (list.some((o) => o.value === keep)) select.value = keep
}

export function timeText (lang, iso) {
  if (!iso) return ''
  return new Intl.DateTimeFormat(lang, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso))
}

export function seatLabel (t, view, seat) {
  const name = seatName(view, seat)
  return name ? t('council.seatNamed', { name, seat }) : t('seat', { seat })
}

// quorumGauge shows counted against required as a meter and in words (never colour alone),
// with the breakdown the profile's rule is computed from.
export function quorumGauge (t) {
  const s = section(t('council.quorum.title'), 'quorum')
  return {
    root: s.root,
    update (view) {
      const q = view.quorum || {}
      const meterId = uniqueId('quorum-meter')
      const reached = q.reached || q.waived
      const verdict = q.waived ? t('council.quorum.waived') : t(q.reached ? 'council.quorum.reached' : 'council.quorum.notReached')
      s.root.dataset.reached = String(Boolean(reached))
      const max = Math.max(q.basis || 0, q.counted || 0, 1)
      const threshold = Math.max((q.required || 0) - 0.5, 0)
      s.render(
        h('p', { class: 'quorum-verdict', dataset: { reached: String(Boolean(reached)) } },
          h('strong', { text: verdict })),
        h('label', { for: meterId, class: 'quorum-figure', text: t('council.quorum.figure', { counted: q.counted ?? 0, required: q.required ?? 0, basis: q.basis ?? 0 }) }),
        // Below the required number the meter is in its "low" band, at or above it "optimum".
        h('meter', { id: meterId, class: 'quorum-meter', min: 0, max, value: q.counted || 0, low: threshold, high: threshold, optimum: max }),
        h('ul', { class: 'quorum-parts' },
          h('li', { text: t('council.quorum.chamber', { n: q.chamber ?? 0 }) }),
          h('li', { text: t(q.remoteCounted ? 'council.quorum.remote' : 'council.quorum.remoteNotCounted', { n: q.remote ?? 0 }) }),
          q.unverified ? h('li', { class: 'attention', text: t('council.quorum.unverified', { n: q.unverified }) }) : null,
          h('li', { text: t(q.counts === 'present-or-represented' ? 'council.quorum.represented' : 'council.quorum.representedNotCounted', { n: q.represented ?? 0 }) }),
          h('li', { text: t(q.of === 'seats' ? 'council.quorum.basisSeats' : 'council.quorum.basisInOffice', { n: q.basis ?? 0 }) })))
    }
  }
}

// sessionHeader names the sitting: body, title, rules, opening and closing times.
export function sessionHeader (t, lang) {
  const root = h('div', { class: 'council-session' })
  return {
    root,
    update (view) {
      const s = view.session || {}
      replaceKeepingFocus(root, [
        h('p', { class: 'council-body-name', text: s.body?.name || '' }),
        s.title ? h('p', { class: 'council-title', text: s.title }) : null,
        h('p', { class: 'council-meta', text: t('council.session.meta', { profile: t(`council.profile.${view.profile}`), opened: timeText(lang, s.openedAt) }) }),
        s.closedAt ? h('p', { class: 'council-closed', text: t('council.session.closedAt', { time: timeText(lang, s.closedAt) }) }) : null])
    }
  }
}

// voteCount is the running count of an open vote, in words.
export function voteCount (t, vote, pending) {
  const c = count(vote)
  return h('p', { class: 'vote-count', dataset: { ballots: String(c.total) } },
    t('council.vote.count', { for: c.for, against: c.against, abstain: c.abstain, notVoting: c['not-voting'], total: c.total, pending }))
}

export function voteTitle (t, vote) {
  return t('council.vote.title', { id: vote.id, question: vote.question || '', mode: t(`council.mode.${vote.mode}`) })
}

// resultBlock proclaims a closed vote's result; names per choice for a public vote.
export function resultBlock (t, view, vote) {
  const r = vote.result
  if (!r) return null
  // Names in roster order, as the minutes list them.
  const order = new Map((view.seats || []).map((s, i) => [s.seat, i]))
  const names = (choice) => (vote.ballots || []).filter((b) => b.choice === choice)
    .sort((a, b) => (order.get(a.seat) ?? a.seat) - (order.get(b.seat) ?? b.seat))
    .map((b) => seatName(view, b.seat) || t('seat', { seat: b.seat }))
  const list = (choice, key) => {
    const n = names(choice)
    return n.length ? h('li', { text: t(key, { names: n.join(', ') }) }) : null
  }
  return h('div', { class: 'vote-result', dataset: { vote: vote.id, adopted: String(r.adopted) } },
    h('p', { class: 'verdict' }, h('strong', { text: t(r.adopted ? 'council.result.adopted' : 'council.result.rejected', { id: vote.id }) })),
    vote.question ? h('p', { class: 'vote-question', text: vote.question }) : null,
    h('p', { class: 'result-figures', text: t('council.result.figures', { for: r.for, against: r.against, abstain: r.abstain, notVoting: r.notVoting, blank: r.blank, cast: r.cast, required: r.required }) }),
    r.castingVote ? h('p', { text: t('council.result.casting', { name: seatName(view, r.chair) }) }) : null,
    vote.mode !== 'secret'
      ? h('ul', { class: 'result-names' },
        list('for', 'council.result.namesFor'),
        list('against', 'council.result.namesAgainst'),
        list('abstain', 'council.result.namesAbstain'),
        list('not-voting', 'council.result.namesNotVoting'),
        (vote.nonVoters || []).length
          ? h('li', { class: 'non-voters', text: t('council.result.namesNonVoters', { names: [...vote.nonVoters].sort((a, b) => (order.get(a) ?? a) - (order.get(b) ?? b)).map((seat) => seatName(view, seat) || t('seat', { seat })).join(', ') }) })
          : null)
      : null)
}

// resultSection shows the latest vote's result, and is hidden until a vote has closed.
export function resultSection (t) {
  const s = section(t('council.result.heading'), 'result')
  return {
    root: s.root,
    update (view) {
      const r = latestResult(view)
      s.root.hidden = !r
      s.render(r ? resultBlock(t, view, r) : null)
    }
  }
}

// quorumLine says in one line whether the quorum is reached, with the figures.
export function quorumLine (t, view) {
  const q = view.quorum || {}
  const reached = Boolean(q.reached || q.waived)
  return h('p', { class: 'quorum-line', dataset: { reached: String(reached) }, text: t(reached ? 'council.quorum.lineReached' : 'council.quorum.lineNotReached', { counted: q.counted ?? 0, required: q.required ?? 0 }) })
}

// saveText offers text as a file download (the minutes), named for the room.
export function saveText (text, type, filename) {
  const url = URL.createObjectURL(new Blob([text], { type }))
  const a = h('a', { href: url, download: filename, hidden: true })
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 60000)
}
