// The deliberation panels' pure parts (web-client/static/js/council.js), run in Node: the API
// client against a stand-in fetch, the store's ordering of states, and the readings of a state
// the panels are built on. Plus a check that every message key the code names exists.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import { repoRoot } from './harness.mjs'
import {
  ApiError, CouncilClient, CouncilStore, isNewer, decodeMessage, ballotsOf, count, floorBlocksMic,
  queuePosition, hasFloor, nextVoteId, nextItemId, latestResult, changes, choices, voteModes, profiles, panelRole
} from '../../web-client/static/js/council.js'
import fr from '../../web-client/static/i18n/fr.js'

// A sitting as the server describes it (docs/api.md, "The state"), trimmed to what is read here.
function sitting (over = {}) {
  return {
    profile: 'fr-epci-visio',
    session: { body: { name: 'CC' }, title: 'Séance', chair: 1, openedAt: '2026-03-05T17:30:00Z' },
    quorum: { counted: 5, required: 4, reached: true, basis: 7 },
    seats: [
      { seat: 1, name: 'Anne Morel', presence: 'chamber' },
      { seat: 2, name: 'Bruno Lefèvre', presence: 'chamber', holds: [6] },
      { seat: 4, name: 'David Roussel', presence: 'remote' },
      { seat: 5, name: 'Emma Faure', presence: 'remote-unverified' },
      { seat: 6, name: 'François Perrin', presence: 'represented', representedBy: 2 }
    ],
    floor: { controlled: false, queue: [] },
    items: [{ id: '1', title: 'Budget annexe', status: 'open' }],
    votes: [],
    applied: 10,
    asOf: '2026-03-05T17:40:00Z',
    openItem: '1',
    ...over
  }
}

// fakeFetch answers from a table and records each request.
function fakeFetch (answers) {
  const calls = []
  const impl = async (url, init) => {
    calls.push({ url, ...init, headers: { ...init.headers } })
    const a = answers.shift()
    if (a instanceof Error) throw a
    return new Response(a.body, { status: a.status, headers: { 'Content-Type': a.type || 'application/json' } })
  }
  return { impl, calls }
}

test('the API client sends the token, encodes the room and returns the state', async () => {
  const { impl, calls } = fakeFetch([{ status: 200, body: JSON.stringify(sitting({ applied: 11 })) }])
  const c = new CouncilClient({ room: 'conseil 5/3', token: 'T0K', fetchImpl: impl })
  const view = await c.act('/attendance/arrival', { seat: 4, place: 'chamber' })
  assert.equal(view.applied, 11)
  assert.equal(calls[0].url, '/api/rooms/conseil%205%2F3/attendance/arrival')
  assert.equal(calls[0].method, 'POST')
  assert.equal(calls[0].headers.Authorization, 'Bearer T0K')
  assert.deepEqual(JSON.parse(calls[0].body), { seat: 4, place: 'chamber' })
  assert.equal(calls[0].headers['Accept-Language'], undefined, 'no page language, none asked')
})

test('the API client asks for the page\'s language, so that refusals read in it', async () => {
  const { impl, calls } = fakeFetch([{ status: 200, body: JSON.stringify(sitting({ applied: 1 })) }])
  const c = new CouncilClient({ room: 'r', token: 't', lang: 'fr', fetchImpl: impl })
  await c.act('/attendance/arrival', { seat: 4, place: 'chamber' })
  assert.equal(calls[0].headers['Accept-Language'], 'fr')
})

test('a refusal carries the server\'s reason and status; no session is null, not an error', async () => {
  const { impl } = fakeFetch([
    { status: 409, body: JSON.stringify({ error: 'item "1" cannot open: quorum not reached: 3 present, 4 required of 7 in office' }) },
    { status: 502, body: '<html>Bad gateway</html>', type: 'text/html' },
    { status: 404, body: JSON.stringify({ error: 'no session is open in this room' }) },
    new TypeError('Failed to fetch'),
    { status: 403, body: '' }
  ])
  const c = new CouncilClient({ room: 'r', token: 't', fetchImpl: impl })
  await assert.rejects(c.act('/items/1/open'), (err) => err instanceof ApiError && err.status === 409 && err.reason.startsWith('item "1" cannot open: quorum not reached'))
  await assert.rejects(c.act('/x'), (err) => err.status === 502 && err.reason === '<html>Bad gateway</html>')
  assert.equal(await c.state(), null)
  await assert.rejects(c.state(), (err) => err instanceof ApiError && err.status === 0 && /Failed to fetch/.test(err.reason))
  await assert.rejects(c.act('/x'), (err) => err.status === 403 && err.reason === 'HTTP 403')
})

test('minutes are fetched as text in the chosen format and language', async () => {
  const { impl, calls } = fakeFetch([{ status: 200, body: '# Procès-verbal', type: 'text/markdown; charset=utf-8' }])
  const c = new CouncilClient({ room: 'r', token: 't', fetchImpl: impl })
  assert.deepEqual(await c.minutes('md', 'fr'), { text: '# Procès-verbal', type: 'text/markdown; charset=utf-8' })
  assert.equal(calls[0].url, '/api/rooms/r/minutes?format=md&lang=fr')
  assert.equal(calls[0].method, 'GET')
})

test('only state messages of the council topic are read', () => {
  const msg = { type: 'state', room: 'r', view: sitting() }
  assert.deepEqual(decodeMessage(new TextEncoder().encode(JSON.stringify(msg))), msg)
  assert.deepEqual(decodeMessage(JSON.stringify(msg)), msg)
  assert.equal(decodeMessage(new TextEncoder().encode('{"type":"chat","text":"hi"}')), null)
  assert.equal(decodeMessage(new TextEncoder().encode('not json')), null)
  assert.equal(decodeMessage(new TextEncoder().encode('{"type":"state"}')), null)
})

test('the store keeps the newest state whatever order states arrive in', () => {
  const store = new CouncilStore()
  const seen = []
  store.subscribe((view, prev) => seen.push([prev?.applied ?? null, view.applied]))
  assert.ok(store.offer(sitting({ applied: 3 })))
  assert.ok(store.offer(sitting({ applied: 5 })))
  assert.equal(store.offer(sitting({ applied: 4 })), false, 'an older state replaced a newer one')
  assert.ok(store.offer(sitting({ applied: 5, asOf: '2026-03-05T17:41:00Z' })), 'the same entry, later speaking times')
  assert.equal(store.offer(sitting({ applied: 5, asOf: '2026-03-05T17:39:00Z' })), false)
  assert.equal(store.offer(null), false)
  assert.deepEqual(seen, [[null, 3], [3, 5], [5, 5]])
  assert.ok(isNewer(null, sitting()))
})

test('a member votes for themselves first, then for each proxy held; cast ballots stay listed', () => {
  const vote = { id: '1-1', item: '1', mode: 'roll-call', ballots: [{ seat: 6, choice: 'for', castBy: 2 }] }
  const view = sitting({ votes: [vote], openVote: '1-1', pendingVoters: [{ seat: 1, castBy: 1 }, { seat: 2, castBy: 2 }, { seat: 4, castBy: 4 }] })
  assert.deepEqual(ballotsOf(view, 2), [
    { seat: 2, own: true, ballot: null },
    { seat: 6, own: false, ballot: vote.ballots[0] }
  ])
  assert.deepEqual(ballotsOf(view, 4), [{ seat: 4, own: true, ballot: null }])
  assert.deepEqual(ballotsOf(view, 5), [], 'an unverified member has nothing to cast')
  assert.deepEqual(ballotsOf(sitting(), 2), [], 'no vote open')
  // The chair recorded David's answer called out in the chamber: it shows on his panel too.
  const recorded = { ...vote, ballots: [...vote.ballots, { seat: 4, choice: 'against', castBy: 4 }] }
  assert.deepEqual(ballotsOf(sitting({ votes: [recorded], openVote: '1-1', pendingVoters: [] }), 4), [{ seat: 4, own: true, ballot: recorded.ballots[1] }])
  assert.deepEqual(count(recorded), { for: 1, against: 1, abstain: 0, 'not-voting': 0, total: 2 })
})

test('the floor rule as the server applies it to microphones', () => {
  const controlled = sitting({ floor: { controlled: true, holder: 4, queue: [{ seat: 2, kind: 'speak' }, { seat: 5, kind: 'point-of-order' }] } })
  assert.equal(floorBlocksMic(controlled, { role: 'member', seat: 2 }), true)
  assert.equal(floorBlocksMic(controlled, { role: 'member', seat: 4 }), false, 'the floor holder may speak')
  assert.equal(floorBlocksMic(controlled, { role: 'member', seat: 1 }), false, 'the chair\'s seat may speak')
  assert.equal(floorBlocksMic(controlled, { role: 'chair', seat: null }), false)
  assert.equal(floorBlocksMic(controlled, { role: 'interpreter', seat: null }), false)
  assert.equal(floorBlocksMic(controlled, { role: 'clerk', seat: null }), true)
  assert.equal(floorBlocksMic(sitting(), { role: 'member', seat: 2 }), false, 'no control, no block')
  assert.equal(floorBlocksMic({ ...controlled, session: { ...controlled.session, closedAt: '2026-03-05T19:00:00Z' } }, { role: 'member', seat: 2 }), false)
  assert.equal(queuePosition(controlled, 5), 2)
  assert.equal(queuePosition(controlled, 4), 0)
  assert.ok(hasFloor(controlled, 4))
  assert.ok(!hasFloor(controlled, null))
})

test('ids proposed for the next item and vote are free', () => {
  const view = sitting({ items: [{ id: '1' }, { id: '3' }], votes: [{ id: '1-1' }, { id: '1-2' }] })
  assert.equal(nextVoteId(view, '1'), '1-3')
  assert.equal(nextVoteId(view, '3'), '3-1')
  assert.equal(nextItemId(view), '4')
  assert.equal(nextItemId(sitting({ items: [] })), '1')
})

test('the panel follows the seat presiding: a member handed the chair gets the console (CGCT L2121-14)', () => {
  const presiding = (chair) => sitting({ session: { ...sitting().session, chair } })
  assert.equal(panelRole(presiding(1), { role: 'member', seat: 3 }), 'member')
  assert.equal(panelRole(presiding(3), { role: 'member', seat: 3 }), 'chair')
  assert.equal(panelRole(presiding(3), { role: 'chair', seat: 1 }), 'chair', 'the mayor keeps the console, the server refusing what only the seat presiding may do')
  assert.equal(panelRole(presiding(3), { role: 'clerk', seat: 3 }), 'clerk', 'only a member is handed the chair')
  assert.equal(panelRole(presiding(3), { role: 'member' }), 'member', 'a member without a seat never presides')
  assert.equal(panelRole(null, { role: 'member', seat: 3 }), 'member')
})

test('what is announced: to whom, and only what changed', () => {
  const before = sitting({ floor: { controlled: false, queue: [] } })
  const after = sitting({
    applied: 11,
    floor: { controlled: true, holder: 4, queue: [{ seat: 2, kind: 'point-of-order' }] },
    seats: before.seats.map((s) => (s.seat === 5 ? { ...s, presence: 'remote' } : s)),
    votes: [{ id: '1-1', closedAt: '2026-03-05T17:50:00Z', result: { for: 4, against: 1, abstain: 1, adopted: true } }]
  })
  const keys = (me) => changes(before, after, me).map(([k]) => k)
  assert.deepEqual(keys({ role: 'member', seat: 4 }), ['council.say.youHaveFloor', 'council.say.controlOn', 'council.say.adopted'])
  assert.deepEqual(keys({ role: 'member', seat: 5 }), ['council.say.floorGiven', 'council.say.controlOn', 'council.say.adopted', 'council.say.verified'])
  assert.deepEqual(keys({ role: 'chair', seat: 1 }), ['council.say.floorGiven', 'council.say.pointOfOrder', 'council.say.controlOn', 'council.say.adopted'])
  assert.deepEqual(changes(null, after, { role: 'member', seat: 4 }), [], 'the first state is shown, not announced')
  assert.deepEqual(changes(after, after, { role: 'chair', seat: 1 }), [])
  const lost = changes(before, sitting({ quorum: { counted: 3, required: 4, reached: false } }), { role: 'clerk' })
  assert.deepEqual(lost, [['council.say.quorumLost', { counted: 3, required: 4 }]])
  assert.equal(latestResult(after).id, '1-1')
})

// Every message key written in the client's code, and every key built from a known list, exists
// in the French catalogue (the Go test checks that English has the same keys).
test('every message key the client names exists', async () => {
  const staticDir = path.join(repoRoot, 'web-client', 'static')
  const scripts = [...(await readdir(path.join(staticDir, 'js'))).map((f) => path.join(staticDir, 'js', f)), path.join(staticDir, 'watch.js')]
  const used = new Set()
  for (const f of scripts) {
    if (!f.endsWith('.js')) continue
    const src = await readFile(f, 'utf8')
    for (const m of src.matchAll(/\bt\(\s*'([\w.-]+)'/g)) used.add(m[1])
    for (const m of src.matchAll(/'((?:council|room|announce|join|watch)\.[\w.-]+)'/g)) used.add(m[1])
  }
  for (const c of choices) used.add(`council.choice.${c}`).add(`council.choice.short.${c}`)
  for (const m of voteModes) used.add(`council.mode.${m}`)
  for (const p of profiles) used.add(`council.profile.${p}`)
  for (const r of ['chair', 'clerk', 'member', 'other']) used.add(`council.panel.${r}`)
  const missing = [...used].filter((k) => !(k in fr))
  assert.deepEqual(missing, [])
  assert.ok(used.size > 150, `only ${used.size} keys found: the scan is broken`)
})
