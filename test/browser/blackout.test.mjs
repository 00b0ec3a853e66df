// A member's link goes dark for 3 s, three times, in two ways:
// - "interface down": B's end of the link goes down, as when Wi-Fi drops or a phone hands over;
//   Chromium sees its network change, closes its sockets, and the SDK resumes its session when
//   the network is back (reconnect=1, then an ICE restart on both connections);
// - "path silent": every packet both ways is dropped (nftables) while the interface stays up, as
//   in a tunnel or a car park; nothing is closed, and the old ICE path must still be there when
//   the packets flow again (the server's ICE failure timeout outlasts the blackout).
// Page B (the member, in a network namespace of its own, netlink.mjs) and page A (the chair, on
// this host) see and hear each other. Each time, media flows again both ways within 2 s of the
// link's return, and the member stays present in the attendance: no departure is recorded.
//
// Needs root, iproute2 and nftables (netlink.mjs); without them it fails and says so.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { joinThroughUI, waitFor, ensureArtifactsDir, delay, api, inboundFrom } from './harness.mjs'
import { LinkLab, toPeer, fromPeer } from './netlink.mjs'

const blackoutMs = 3000
const runs = 3

const roster = `seat,name,group,role
1,Anne Morel,Ensemble,président
2,Bruno Lefèvre,Ensemble,conseiller
3,Chloé Garnier,Agir ensemble,conseillère
`

// counters reads, in the viewer's page, what has arrived from one sender so far: frames decoded
// and audio energy and bytes, summed over the sender's tracks (a resumed session keeps its
// tracks; a full rejoin would bring new ones, whose counters start again from zero).
async function counters (viewer, identity) {
  const got = await inboundFrom(viewer, identity)
  return {
    videoTrack: got.videoTrack,
    frames: got.video?.frames || 0,
    width: got.video?.width || 0,
    keyframes: got.video?.keyframes || 0,
    plis: got.video?.plis || 0,
    audioTrack: got.audioTrack,
    energy: got.audio?.energy || 0,
    audioBytes: got.audio?.bytes || 0
  }
}

// framesSince and energySince are what arrived from the sender since `from`.
const framesSince = (from, now) => from.videoTrack === now.videoTrack ? now.frames - from.frames : now.frames
const energySince = (from, now) => from.audioTrack === now.audioTrack ? now.energy - from.energy : now.energy
const audioBytesSince = (from, now) => from.audioTrack === now.audioTrack ? now.audioBytes - from.audioBytes : now.audioBytes

// flowing says whether video frames and sound from the sender arrived since `from`.
function flowing (from, now, minFrames) {
  return framesSince(from, now) >= minFrames && energySince(from, now) > 0
}

// watchReturn samples, every 100 ms for watchMs after `since` (a Date.now(), the link's
// return), what the viewer gets from the sender, and says when media came back: `audio` and
// `video` when the first new sound and frames arrived, `steady` when it started to flow without
// a break (from there to the end of the watch, every 300 ms brought new sound and new frames).
// A resume that restarts ICE can bring media back on the old path, then break it again while the
// new one is checked: `steady` is the figure that counts for a listener.
const watchMs = 6000
async function watchReturn (viewer, sender, since, from) {
  const samples = []
  while (Date.now() - since < watchMs) {
    const now = await counters(viewer, sender.id)
    samples.push({ at: Date.now() - since, audio: audioBytesSince(from, now), energy: energySince(from, now), frames: framesSince(from, now), width: now.width, keyframes: now.keyframes - from.keyframes, plis: now.plis - from.plis })
    await delay(100)
  }
  const first = (ok) => samples.find(ok)?.at ?? null
  const back = {
    audio: first((x) => x.audio > 0 && x.energy > 0),
    video: first((x) => x.frames >= 2)
  }
  // steady: the earliest sample from which every later window of 300 ms saw both grow.
  back.steady = null
  for (let i = samples.length - 1; i >= 0; i--) {
    const j = samples.findIndex((x) => x.at >= samples[i].at + 300)
    if (j < 0) continue
    if (!(samples[j].audio > samples[i].audio && samples[j].frames > samples[i].frames)) break
    back.steady = samples[i].at
  }
  if (back.steady !== null && samples.at(-1).at - back.steady < 1000) back.steady = null // too short to tell
  // What the first frames were: their width (a lower simulcast layer, or the same), and the
  // keyframes and keyframe requests (PLI) the viewer counted until then.
  const firstFrames = samples.find((x) => x.frames >= 2)
  if (firstFrames) back.firstFrames = { width: firstFrames.width, keyframes: firstFrames.keyframes, plis: firstFrames.plis }
  return back
}

// Each kind of blackout cuts the link and restores it.
const blackouts = {
  'interface down': { cut: (link) => link.down(), restore: (link) => link.up() },
  'path silent': {
    cut: (link) => Promise.all([link.loss(toPeer, 100), link.loss(fromPeer, 100)]),
    restore: (link) => Promise.all([link.noLoss(toPeer), link.noLoss(fromPeer)])
  }
}

for (const [kind, blackout] of Object.entries(blackouts)) {
describe(`a member whose link goes dark for 3 s (${kind}) gets media back and stays present`, { timeout: 300000 }, () => {
  const room = `tunnel-${randomBytes(3).toString('hex')}`
  const lab = new LinkLab()
  const { link } = lab
  let anne
  let bruno
  let chairToken

  const seatOf = async (seat) => {
    const r = await api(lab.server.baseURL, 'GET', `/api/rooms/${room}/state`, chairToken)
    assert.equal(r.status, 200, JSON.stringify(r.data))
    return r.data.seats.find((s) => s.seat === seat)
  }

  before(async () => {
    await ensureArtifactsDir()
    await lab.start({ logName: `server-blackout-${kind.replace(' ', '-')}.log`, config: process.env.SERVER_DEBUG ? 'logging:\n  level: debug\n' : undefined })
  }, { timeout: 150000 })

  after(async () => {
    await Promise.all([anne?.close(), bruno?.close()])
    await lab.stop()
  })

  it('the chair opens the sitting; the member, joined from afar, is present and media flows both ways', async () => {
    ;[anne, bruno] = await Promise.all([
      joinThroughUI(lab.here, lab.server.baseURL, { name: 'Anne Morel', room, role: 'chair', seat: 1 }),
      joinThroughUI(lab.there, lab.server.baseURL, { name: 'Bruno Lefèvre', room, role: 'member', seat: 2 })
    ])
    for (const p of [anne, bruno]) p.id = await p.identity
    chairToken = await anne.page.evaluate(() => sessionStorage.getItem('hemicycle.invitation'))
    const opened = await api(lab.server.baseURL, 'POST', `/api/rooms/${room}/session`, chairToken, {
      body: { name: 'Conseil communautaire de la Vallée', kind: 'epci', profile: 'fr-epci-visio' },
      title: 'Séance ordinaire', chair: 1, rosterCsv: roster
    })
    assert.equal(opened.status, 200, JSON.stringify(opened.data))
    await waitFor('the member to be recorded as present from afar', async () => {
      const seat = await seatOf(2)
      return { ok: seat?.presence === 'remote-unverified', state: seat }
    }, { timeoutMs: 10000 })
    const [a0, b0] = await Promise.all([counters(anne, bruno.id), counters(bruno, anne.id)])
    await waitFor('media both ways', async () => {
      const [a, b] = await Promise.all([counters(anne, bruno.id), counters(bruno, anne.id)])
      return { ok: flowing(a0, a, 15) && flowing(b0, b, 15), state: { a, b } }
    }, { timeoutMs: 30000 })
  }, { timeout: 90000 })

  it(`${runs} blackouts of ${blackoutMs / 1000} s: media back within 2 s of each return, both ways; the member never departs`, async (t) => {
    const figures = []
    for (let run = 1; run <= runs; run++) {
      await blackout.cut(link)
      await delay(blackoutMs)
      const [a0, b0] = await Promise.all([counters(anne, bruno.id), counters(bruno, anne.id)])
      const upAt = Date.now()
      await blackout.restore(link)
      const [toChair, toMember] = await Promise.all([watchReturn(anne, bruno, upAt, a0), watchReturn(bruno, anne, upAt, b0)])
      figures.push({ run, toChair, toMember })
      t.diagnostic(`run ${run}, ms after the link's return: the chair heard the member at ${toChair.audio}, saw them at ${toChair.video}, ` +
        `steady from ${toChair.steady}; the member heard the chair at ${toMember.audio}, saw them at ${toMember.video}, steady from ${toMember.steady}; ` +
        `first frames to the chair ${JSON.stringify(toChair.firstFrames)} (${a0.width} px wide before), to the member ${JSON.stringify(toMember.firstFrames)} (${b0.width} px before)`)
      const seat = await seatOf(2)
      assert.equal(seat.presence, 'remote-unverified', `after blackout ${run} the member's seat is ${JSON.stringify(seat)}`)
      await delay(2000) // settle before the next blackout
    }
    const journal = await api(lab.server.baseURL, 'GET', `/api/rooms/${room}/journal`, chairToken)
    assert.equal(journal.status, 200)
    const departures = String(typeof journal.data === 'string' ? journal.data : JSON.stringify(journal.data))
      .split('\n').filter((l) => l.includes('member.departed'))
    assert.deepEqual(departures, [], 'a departure was recorded for a member whose link came back')
    for (const f of figures) {
      for (const back of [f.toChair, f.toMember]) {
        assert.ok(back.steady !== null && back.steady <= 2000, `media did not flow steadily within 2 s of the return in run ${f.run}: ${JSON.stringify(f)}`)
      }
    }
    for (const p of [anne, bruno]) assert.deepEqual(p.errors, [], `${p.name}'s page threw`)
  }, { timeout: 120000 })
})
}
