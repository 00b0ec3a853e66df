// A page really loses its network, then gets it back. Page B's Chromium runs in a network
// namespace of its own and reaches the server only through a veth pair; taking B's end of the
// pair down cuts its WebSocket and its WebRTC UDP together, as a dropped Wi-Fi would.
// (Playwright's setOffline, used in room.test.mjs, stops HTTP and WebSockets only: media keeps
// flowing over UDP, so it cannot show that media comes back.)
//
// Needs root, iproute2 and nftables (netlink.mjs). Without them it fails and says what is missing:
// it does not skip. Everything it creates is named after its PID and removed when it ends, also on
// failure and on SIGINT/SIGTERM; namespaces left by a run that was killed outright are removed by
// the next one.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { joinThroughUI, waitFor, ensureArtifactsDir, delay, inboundFrom } from './harness.mjs'
import { LinkLab } from './netlink.mjs'


// received reads, in the viewer's page, what arrives from one sender: the tracks shown for them
// and their counters. Track ids are kept so that a track replaced by a full reconnection is not
// compared with the one before it.
async function received (viewer, identity) {
  const got = await inboundFrom(viewer, identity)
  return {
    video: got.video && { track: got.videoTrack, ...got.video },
    audio: got.audio && { track: got.audioTrack, ...got.audio }
  }
}

// grew says whether a counter went up by at least min since `before` (from zero on a new track).
function grew (before, now, field, min) {
  if (!now) return false
  const from = before && before.track === now.track ? before[field] : 0
  return now[field] - from >= min
}

// expectFlow waits until the viewer decodes new video frames from the sender and receives audio
// from them that carries sound.
async function expectFlow (viewer, sender, { timeoutMs = 30000 } = {}) {
  const start = await received(viewer, sender.id)
  return waitFor(`${viewer.name} to decode video and hear sound from ${sender.name}`, async () => {
    const now = await received(viewer, sender.id)
    const ok = grew(start.video, now.video, 'frames', 15) && grew(start.audio, now.audio, 'bytes', 1) &&
      grew(start.audio, now.audio, 'energy', Number.MIN_VALUE)
    return { ok, state: { start, now } }
  }, { timeoutMs })
}

// expectStalled waits until nothing more arrives from the sender: two readings two seconds apart
// with the same frames decoded and the same bytes, on the same tracks.
async function expectStalled (viewer, sender, { timeoutMs = 20000 } = {}) {
  return waitFor(`${viewer.name} to stop receiving ${sender.name}`, async () => {
    const a = await received(viewer, sender.id)
    await delay(2000)
    const b = await received(viewer, sender.id)
    const same = (x, y) => x && y && x.track === y.track && x.bytes === y.bytes
    const ok = same(a.video, b.video) && a.video.frames === b.video.frames && same(a.audio, b.audio)
    return { ok, state: { a, b } }
  }, { timeoutMs, intervalMs: 0 })
}

// selectedLocalAddress is the page's own address on the candidate pair its first open
// connection uses: which network its media really goes through.
function selectedLocalAddress (p) {
  return p.page.evaluate(async () => {
    for (const pc of window.__hemicycleProbe.peerConnections()) {
      if (pc.connectionState !== 'connected') continue
      const report = await pc.getStats()
      let pairId
      report.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId })
      const pair = pairId && report.get(pairId)
      const local = pair && report.get(pair.localCandidateId)
      if (local) return local.address || local.ip
    }
    return null
  })
}

// connection is what the page shows of its own connection: the reconnecting banner and the
// state pill (both absent once the page has left the room).
function connection (p) {
  return p.page.evaluate(() => {
    const banner = document.querySelector('.banner.reconnecting')
    return { banner: banner ? !banner.hidden : 'absent', pill: document.querySelector('.conn-state')?.dataset.state ?? 'absent' }
  })
}

// qualityShown is the connection quality the viewer's page shows on the sender's tile ('absent'
// without a tile).
function qualityShown (viewer, sender) {
  return viewer.page.evaluate((id) =>
    document.querySelector(`.tile[data-identity="${id}"][data-source="camera"]`)?.dataset.quality ?? 'absent', sender.id)
}

// The scenario is bounded by its three steps' timeouts (90 s in all); the outer bound also covers
// building the server, which is slow only on a cold Go cache.
describe('a page whose network really drops (UDP and WebSocket) gets its media back', { timeout: 240000 }, () => {
  const room = `reseau-${randomBytes(3).toString('hex')}`
  const lab = new LinkLab()
  const { link } = lab
  let anne
  let bruno
  let cutAt

  before(async () => {
    await ensureArtifactsDir()
    await lab.start({ logName: 'server-network.log' })
    assert.equal(new URL(lab.server.baseURL).hostname, link.hostIP, 'the server did not bind the link address')
  }, { timeout: 150000 })

  after(async () => {
    await Promise.all([anne?.close(), bruno?.close()])
    await lab.stop()
    assert.deepEqual(await link.leftovers(), [], 'the namespace or the veth pair outlived the test')
  })

  it('page A (this namespace) and page B (its own namespace) join through the UI and see and hear each other', async (t) => {
    ;[anne, bruno] = await Promise.all([
      joinThroughUI(lab.here, lab.server.baseURL, { name: 'Anne Martin', room, role: 'chair' }),
      joinThroughUI(lab.there, lab.server.baseURL, { name: 'Bruno Petit', room, role: 'member' })
    ])
    for (const p of [anne, bruno]) p.id = await p.identity
    await Promise.all([expectFlow(anne, bruno, { timeoutMs: 20000 }), expectFlow(bruno, anne, { timeoutMs: 20000 })])
    // B's media really goes through the link that is about to be cut.
    assert.equal(await selectedLocalAddress(bruno), link.peerIP, 'page B\'s media does not use its namespace\'s link')
    t.diagnostic(`page A's media leaves from ${await selectedLocalAddress(anne)}, page B's from ${link.peerIP}`)
  }, { timeout: 30000 })

  it('cutting B\'s link: B shows it is reconnecting, and A stops receiving B and sees its connection lost', async (t) => {
    bruno.sessionsBefore = await bruno.iceSessions()
    cutAt = Date.now()
    await link.down()
    await Promise.all([
      (async () => {
        // B's SDK reacts when its signalling pings go unanswered for the ping_timeout the server
        // sets (15 s, signaling/room.go), or when its connections fail, whichever is first.
        await waitFor('B to show that it is reconnecting', async () => {
          const state = await connection(bruno)
          return { ok: state.banner === true && state.pill === 'reconnecting', state }
        }, { timeoutMs: 22000 })
        t.diagnostic(`B showed "reconnecting" ${Date.now() - cutAt} ms after the cut`)
        assert.match(await bruno.page.locator('.banner.reconnecting').innerText(), /Connexion perdue/)
      })(),
      (async () => {
        // The server noticed: it rates B's connection as lost, which A's page shows on B's tile.
        await waitFor('A to show B\'s connection as lost', async () => {
          const quality = await qualityShown(anne, bruno)
          return { ok: quality === 'lost', state: quality }
        }, { timeoutMs: 20000 })
        t.diagnostic(`A showed B's connection as lost ${Date.now() - cutAt} ms after the cut`)
      })(),
      expectStalled(anne, bruno),
      // Nothing reaches B either: the UDP that setOffline would have left alone is cut too.
      expectStalled(bruno, anne)
    ])
    const a = await connection(anne)
    assert.ok(a.banner === false && a.pill === 'connected', `A's own connection was affected: ${JSON.stringify(a)}`)
  }, { timeout: 25000 })

  it('restoring the link: B leaves the reconnecting state and media flows both ways again', async (t) => {
    const restoredAt = Date.now()
    await link.up()
    t.diagnostic(`link down for ${restoredAt - cutAt} ms`)
    const since = (what) => () => t.diagnostic(`${what} ${Date.now() - restoredAt} ms after the restore`)
    await Promise.all([
      waitFor('B to be connected again', async () => {
        const state = await connection(bruno)
        return { ok: state.banner === false && state.pill === 'connected', state }
      }, { timeoutMs: 30000 }).then(since('B connected again')),
      expectFlow(anne, bruno, { timeoutMs: 30000 }).then(since('A decoding and hearing B again')),
      expectFlow(bruno, anne, { timeoutMs: 30000 }).then(since('B decoding and hearing A again')),
      waitFor('A to stop showing B\'s connection as lost', async () => {
        const quality = await qualityShown(anne, bruno)
        return { ok: quality !== 'lost' && quality !== 'absent', state: quality }
      }, { timeoutMs: 30000 }).then(since('B\'s connection no longer lost for A'))
    ])
    assert.match((await bruno.page.evaluate(() => window.__hemicycleProbe.announced())).join('\n'), /Connexion rétablie/)
    const sessionsAfter = await bruno.iceSessions()
    t.diagnostic(`B's ICE sessions: ${bruno.sessionsBefore.join(',')} before, ${sessionsAfter.join(',')} after`)
    assert.equal(await selectedLocalAddress(bruno), link.peerIP)
    for (const p of [anne, bruno]) assert.deepEqual(p.errors, [], `${p.name}'s page threw`)
  }, { timeout: 35000 })
})
