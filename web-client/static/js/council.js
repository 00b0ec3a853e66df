// The deliberation seen from the browser: the API client (docs/api.md), the store that keeps the
// newest state, and pure readings of that state (who may vote for which seat, where one stands in
// the queue, what changed). Nothing here touches the DOM or the SDK, so Node can test it.

export const councilTopic = 'hemicycle.council'
export const profiles = ['fr-epci-visio', 'fr-commune', 'fr-2020-emergency', 'generic']
export const voteModes = ['roll-call', 'electronic', 'show-of-hands', 'secret']
export const choices = ['for', 'against', 'abstain', 'not-voting']

// ApiError carries the server's refusal: its status and its reason, written to be shown as is.
export class ApiError extends Error {
  constructor (status, reason) {
    super(reason)
    this.status = status
    this.reason = reason
  }
}

// CouncilClient calls the deliberation API with the participant's own token, in the page's
// language (lang), so that the server's refusals read in the words around them.
export class CouncilClient {
  constructor ({ room, token, lang, fetchImpl = (...a) => fetch(...a) }) {
    this.room = room
    this.token = token
    this.lang = lang
    this.fetch = fetchImpl
  }

  url (path) {
    return `/api/rooms/${encodeURIComponent(this.room)}${path}`
  }

  async request (method, path, body, accept = 'application/json') {
    const headers = { Authorization: `Bearer ${this.token}`, Accept: accept }
    if (this.lang) headers['Accept-Language'] = this.lang
    if (body !== undefined) headers['Content-Type'] = 'application/json'
    let res
    try {
      res = await this.fetch(this.url(path), { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' })
    } catch (err) {
      throw new ApiError(0, err.message || String(err))
    }
    if (!res.ok) throw new ApiError(res.status, await refusalReason(res))
    return res
  }

  // found is what a GET answers, or null when the server has none (404).
  async found (path) {
    try {
      return await (await this.request('GET', path)).json()
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return null
      throw err
    }
  }

  // state is the session now, or null when none is open yet.
  state () {
    return this.found('/state')
  }

  // act runs one command (POST) and resolves to the whole state the server answers with.
  async act (path, body = {}) {
    return (await this.request('POST', path, body)).json()
  }

  openSession (form) {
    return this.act('/session', form)
  }

  mute (identity) {
    return this.act('/mute', { identity })
  }

  // caption sends a captioner's line ({ speaker, segments }); the answer names whom the server
  // attributed it to ({ speaker, track }).
  caption (body) {
    return this.act('/captions', body)
  }

  // programme describes the room's public programme ({ delaySeconds }), or is null when the
  // room has none (the server broadcasts nothing, or not this room now).
  programme () {
    return this.found('/programme')
  }

  // bleeps lists the intervals bleeped so far ({ bleeps, delaySeconds }); for the chair and the
  // clerk.
  async bleeps () {
    return (await this.request('GET', '/bleep')).json()
  }

  // bleep starts or ends the bleep ({ on }) or bleeps the last seconds ({ lastSeconds }); the
  // answer carries the whole list of intervals.
  bleep (body) {
    return this.act('/bleep', body)
  }

  // minutes fetches the draft minutes as text (format md or html, lang fr or en).
  async minutes (format, lang) {
    const q = new URLSearchParams({ format, lang })
    const res = await this.request('GET', `/minutes?${q}`, undefined, format === 'html' ? 'text/html' : 'text/markdown')
    return { text: await res.text(), type: res.headers.get('Content-Type') || 'text/plain' }
  }
}

async function refusalReason (res) {
  const text = await res.text().catch(() => '')
  try {
    const data = JSON.parse(text)
    if (data && typeof data.error === 'string' && data.error) return data.error
  } catch {
    // Not our JSON (a proxy's page, say): the status line says what there is to say.
  }
  return text.trim().slice(0, 300) || `HTTP ${res.status}`
}

// decodeMessage reads a data packet or event of topic hemicycle.council; null if it is not a
// state message.
export function decodeMessage (payload) {
  try {
    const text = typeof payload === 'string' ? payload : new TextDecoder().decode(payload)
    const msg = JSON.parse(text)
    if (msg && msg.type === 'state' && msg.view && typeof msg.view === 'object') return msg
  } catch {
    // A malformed packet is ignored; the next state message is complete anyway.
  }
  return null
}

// isNewer tells whether view b should replace a. States arrive by several paths (the answer to
// our own request, data packets, the initial GET) in any order; the journal position decides,
// and at equal position the later snapshot carries the later speaking times.
export function isNewer (a, b) {
  if (!b) return false
  if (!a) return true
  if ((b.applied ?? 0) !== (a.applied ?? 0)) return (b.applied ?? 0) > (a.applied ?? 0)
  return Date.parse(b.asOf || 0) >= Date.parse(a.asOf || 0)
}

// CouncilStore keeps the newest state and tells its listeners when it changes.
export class CouncilStore {
  constructor () {
    this.view = null
    this.listeners = new Set()
  }

  offer (view) {
    if (!isNewer(this.view, view)) return false
    const prev = this.view
    this.view = view
    for (const fn of this.listeners) fn(view, prev)
    return true
  }

  subscribe (fn) {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }
}

export function seatOf (view, seat) {
  return view?.seats?.find((s) => s.seat === seat) || null
}

export function seatName (view, seat) {
  return seatOf(view, seat)?.name || ''
}

export function openVote (view) {
  return view?.openVote ? view.votes?.find((v) => v.id === view.openVote) || null : null
}

export function openItem (view) {
  return view?.openItem ? view.items?.find((i) => i.id === view.openItem) || null : null
}

export function sessionClosed (view) {
  return Boolean(view?.session?.closedAt)
}

// panelRole is the panel a participant is shown: the chair's console to a member while the
// sitting has them preside (the chair handed over, CGCT L2121-14), their role's otherwise. The
// server checks the same seat for every power of the chair.
export function panelRole (view, { role, seat }) {
  if (role === 'member' && seat && view?.session?.chair === seat) return 'chair'
  return role
}

// ballotsOf lists the seats a member votes for in the open vote, themselves first, then each seat
// whose proxy they hold: those still to vote (from pendingVoters) and those already cast.
export function ballotsOf (view, mySeat) {
  const vote = openVote(view)
  if (!vote || !mySeat) return []
  const out = new Map()
  for (const p of view.pendingVoters || []) {
    if (p.castBy === mySeat) out.set(p.seat, { seat: p.seat, own: p.seat === mySeat, ballot: null })
  }
  for (const b of vote.ballots || []) {
    if (b.castBy === mySeat || b.seat === mySeat) out.set(b.seat, { seat: b.seat, own: b.seat === mySeat, ballot: b })
  }
  return [...out.values()].sort((a, b) => (b.own - a.own) || (a.seat - b.seat))
}

// recordableVoters are the pending voters whose answer the chair's or the clerk's console
// records (mySeat: the console's own seat, none for the clerk): in a roll call or a show of hands
// every one, as called out; in an electronic vote those whose ballot is cast from the chamber,
// by a member without a device, and the chair's own. The server checks the same rule.
export function recordableVoters (vote, pending, mySeat) {
  if (!vote || vote.mode === 'secret') return []
  if (vote.mode !== 'electronic') return pending || []
  return (pending || []).filter((p) => p.inChamber || (mySeat && p.castBy === mySeat))
}

// nonVoters are the seats of the open vote that have not voted (present or represented): those a
// closing must confirm as taking no part.
export function nonVoters (view) {
  const vote = openVote(view)
  if (!vote || vote.mode === 'secret') return []
  return (view.pendingVoters || []).map((p) => p.seat)
}

// count adds up a vote's ballots per choice (a closed vote's result says the same, and more).
export function count (vote) {
  const c = { for: 0, against: 0, abstain: 0, 'not-voting': 0, total: 0 }
  for (const b of vote?.ballots || []) {
    c[b.choice] = (c[b.choice] || 0) + 1
    c.total++
  }
  return c
}

// latestResult is the most recently closed vote that has a result.
export function latestResult (view) {
  const closed = (view?.votes || []).filter((v) => v.result && v.closedAt)
  closed.sort((a, b) => Date.parse(a.closedAt) - Date.parse(b.closedAt))
  return closed[closed.length - 1] || null
}

// queuePosition is a seat's place in the floor queue (1 for the head), 0 when not waiting.
export function queuePosition (view, seat) {
  const i = (view?.floor?.queue || []).findIndex((r) => r.seat === seat)
  return i + 1
}

export function hasFloor (view, seat) {
  return Boolean(seat) && view?.floor?.holder === seat
}

// floorBlocksMic mirrors the server's rule (signaling.floorAllows) to explain a refused
// microphone before anyone is surprised: with floor control on, only the chair (by role or seat),
// interpreters, captioners and the floor holder may speak.
export function floorBlocksMic (view, { role, seat }) {
  if (!view?.floor?.controlled || !view.session?.openedAt || sessionClosed(view)) return false
  if (['chair', 'interpreter', 'captioner'].includes(role)) return false
  if (seat && (seat === view.session.chair || seat === view.floor.holder)) return false
  return true
}

// nextVoteId proposes an id for the next vote on an item: "3-1", "3-2"…
export function nextVoteId (view, itemId) {
  const taken = new Set((view?.votes || []).map((v) => v.id))
  for (let n = 1; ; n++) {
    const id = `${itemId}-${n}`
    if (!taken.has(id)) return id
  }
}

// nextItemId proposes the next free numeric agenda id.
export function nextItemId (view) {
  const taken = new Set((view?.items || []).map((i) => i.id))
  for (let n = (view?.items || []).length + 1; ; n++) {
    if (!taken.has(String(n))) return String(n)
  }
}

// changes lists what a participant should hear about when the state moves from prev to next, as
// message keys with their parameters; the panels turn them into live-region announcements.
export function changes (prev, next, { role, seat }) {
  const out = []
  if (!next) return out
  if (!prev) return out // the first state is shown, not announced
  if (!prev.session?.openedAt && next.session?.openedAt) out.push(['council.say.opened', { title: next.session.title || '' }])
  if (!sessionClosed(prev) && sessionClosed(next)) out.push(['council.say.closed', {}])
  if (prev.quorum && next.quorum && prev.quorum.reached !== next.quorum.reached && (role === 'chair' || role === 'clerk')) {
    out.push([next.quorum.reached ? 'council.say.quorumReached' : 'council.say.quorumLost', { counted: next.quorum.counted, required: next.quorum.required }])
  }
  const mine = seat && (role === 'member' || role === 'chair')
  if (mine && prev.floor?.holder !== seat && next.floor?.holder === seat) out.push(['council.say.youHaveFloor', {}])
  if (mine && prev.floor?.holder === seat && next.floor?.holder !== seat) out.push(['council.say.floorEnded', {}])
  if (next.floor?.holder && next.floor.holder !== prev.floor?.holder && next.floor.holder !== seat) {
    out.push(['council.say.floorGiven', { name: seatName(next, next.floor.holder) }])
  }
  if (role === 'chair') {
    const before = new Set((prev.floor?.queue || []).map((r) => r.seat))
    for (const r of next.floor?.queue || []) {
      if (!before.has(r.seat)) out.push([r.kind === 'point-of-order' ? 'council.say.pointOfOrder' : 'council.say.handRaised', { name: seatName(next, r.seat) }])
    }
  }
  if (prev.session?.chair && next.session?.chair && prev.session.chair !== next.session.chair) {
    out.push([next.session.chair === seat ? 'council.say.youPreside' : 'council.say.chairChanged', { name: seatName(next, next.session.chair) || next.session.chair }])
  }
  if (Boolean(prev.floor?.controlled) !== Boolean(next.floor?.controlled)) {
    out.push([next.floor?.controlled ? 'council.say.controlOn' : 'council.say.controlOff', {}])
  }
  if (next.openItem && next.openItem !== prev.openItem) {
    out.push(['council.say.itemOpened', { title: openItem(next)?.title || next.openItem }])
  }
  if (next.openVote && next.openVote !== prev.openVote) {
    out.push(['council.say.voteOpened', { question: openVote(next)?.question || next.openVote }])
  }
  const closedBefore = new Set((prev.votes || []).filter((v) => v.result).map((v) => v.id))
  for (const v of next.votes || []) {
    if (v.result && !closedBefore.has(v.id)) {
      out.push([v.result.adopted ? 'council.say.adopted' : 'council.say.rejected', { id: v.id, for: v.result.for, against: v.result.against, abstain: v.result.abstain }])
    }
  }
  if (seat && role === 'member') {
    const was = seatOf(prev, seat)?.presence
    const now = seatOf(next, seat)?.presence
    if (was === 'remote-unverified' && now === 'remote') out.push(['council.say.verified', {}])
  }
  return out
}

// The chair's bleep of the public programme. Intervals come from the server as
// { from, to } (wall-clock ISO times; no "to" while the bleep runs).

// bleepRunning says whether a bleep is running now.
export function bleepRunning (bleeps) {
  return (bleeps || []).some((b) => !b.to)
}

// bleepChoices are the "bleep the last N seconds" offered for a delay: a few round durations
// shorter than the delay, then the whole delay (the server refuses anything longer, since the
// public has heard it already).
export function bleepChoices (delaySeconds) {
  const delay = Math.floor(Number(delaySeconds) || 0)
  if (delay < 1) return []
  return [...[2, 5, 10, 30, 60].filter((n) => n < delay).map((n) => ({ seconds: n, whole: false })), { seconds: delay, whole: true }]
}

// bleepChanges says what to announce when the list of intervals moves from prev to next, as
// message keys with parameters: a bleep started or ended (whichever tab or chair did it), or a
// passage bleeped after the fact. The first list read is shown, not announced.
export function bleepChanges (prev, next) {
  if (!prev || !next) return []
  const was = bleepRunning(prev)
  const now = bleepRunning(next)
  if (!was && now) return [['council.bleep.say.started', {}]]
  if (was && !now) return [['council.bleep.say.ended', {}]]
  const known = new Set(prev.map((b) => `${b.from}/${b.to || ''}`))
  return next.filter((b) => b.to && !known.has(`${b.from}/${b.to}`))
    .map((b) => ['council.bleep.say.passage', { seconds: bleepSeconds(b) }])
}

// bleepSeconds is an interval's length in whole seconds (rounded), 0 while it runs.
export function bleepSeconds (b) {
  if (!b?.to) return 0
  return Math.max(0, Math.round((Date.parse(b.to) - Date.parse(b.from)) / 1000))
}
