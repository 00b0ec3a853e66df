// What a LiveKit front end asks of the server, with the vendored livekit-client in Chromium (the
// SDK directly, as La Suite Meet uses it, not Hemicycle's own pages):
// - a camera published with videoCodec 'vp9' reaches another participant as VP9, decoded;
// - the microphone, published with the SDK's defaults, goes out with RED (RFC 2198) and reaches
//   the other participant as RED;
// - a permission change through RoomService.UpdateParticipant that no longer allows the camera
//   removes it for everyone (the delay is logged; the bound only catches a removal that does not
//   happen).
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { startServer, launchBrowser, openClient, waitFor, ensureArtifactsDir, devAdminToken } from './harness.mjs'


// sdkParticipant opens a page of the server and connects a livekit-client Room from it with the
// given options, as any LiveKit front end does; window.__room is that Room.
async function sdkParticipant (browser, baseURL, room, identity, options) {
  const p = await openClient(browser, baseURL, { name: identity })
  const res = await fetch(new URL('/api/dev/token', baseURL), { method: 'POST', body: JSON.stringify({ room, identity, name: identity, role: 'member' }) })
  const { token, url } = await res.json()
  await p.page.evaluate(async ({ url, token, options }) => {
    const lk = await import('/vendor/livekit-client.esm.mjs')
    window.__lk = lk
    const room = new lk.Room({ ...options, singlePeerConnection: false })
    await room.connect(url, token)
    window.__room = room
  }, { url, token, options })
  return p
}

// inbound reads, in a participant's page, what arrives from sender: the decoded video frames and
// the codec they came in (from the codec statistics), and the audio codecs the receiver negotiated.
function inbound (p, sender) {
  return p.page.evaluate(async (sender) => {
    const rp = window.__room.remoteParticipants.get(sender)
    const cam = rp?.getTrackPublication(window.__lk.Track.Source.Camera)
    const mic = rp?.getTrackPublication(window.__lk.Track.Source.Microphone)
    const out = { camera: !!cam, video: null, audioCodecs: null }
    const vr = cam?.track?.receiver
    if (vr) {
      const stats = await vr.getStats()
      stats.forEach((s) => {
        if (s.type === 'inbound-rtp') out.video = { frames: s.framesDecoded || 0, codec: stats.get(s.codecId)?.mimeType ?? null }
      })
    }
    const ar = mic?.track?.receiver
    if (ar) out.audioCodecs = ar.getParameters().codecs.map((c) => c.mimeType.toLowerCase())
    return out
  }, sender)
}

describe('a LiveKit front end: codec choices, RED, source permissions', { timeout: 180000 }, () => {
  const room = `codecs-${randomBytes(3).toString('hex')}`
  let server, browser

  before(async () => {
    await ensureArtifactsDir()
    server = await startServer({ logName: 'server-codecs.log' })
    browser = await launchBrowser()
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
  })

  it('VP9 and RED as the publisher asks, and a camera withdrawn by a permission change', async () => {
    const anne = await sdkParticipant(browser, server.baseURL, room, 'anne', { publishDefaults: { videoCodec: 'vp9' } })
    const bruno = await sdkParticipant(browser, server.baseURL, room, 'bruno', {})
    await anne.page.evaluate(async () => {
      await window.__room.localParticipant.setMicrophoneEnabled(true)
      await window.__room.localParticipant.setCameraEnabled(true, { resolution: { width: 640, height: 360 } })
    })
    let last
    await waitFor("Bruno to decode Anne's camera", async () => {
      last = await inbound(bruno, 'anne')
      return last.video?.frames > 15 && last.audioCodecs
    }, { timeoutMs: 30000, intervalMs: 250 })
    assert.equal(last.video.codec, 'video/VP9', `Anne's camera reached Bruno as ${last.video.codec}: ${JSON.stringify(last)}`)
    assert.equal(last.audioCodecs[0], 'audio/red', `Anne's microphone reached Bruno as ${last.audioCodecs}`)

    const withdrawn = Date.now()
    const res = await fetch(new URL('/twirp/livekit.RoomService/UpdateParticipant', server.baseURL), {
      method: 'POST',
      headers: { Authorization: `Bearer ${devAdminToken(room)}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ room, identity: 'anne', permission: { canSubscribe: true, canPublish: true, canPublishData: true, canPublishSources: ['MICROPHONE'] } })
    })
    assert.equal(res.status, 200, await res.text())
    await waitFor("Anne's camera gone from Bruno's room, her microphone kept", async () => {
      last = await inbound(bruno, 'anne')
      return !last.camera && last.audioCodecs
    }, { timeoutMs: 5000, intervalMs: 50 })
    const removedMs = Date.now() - withdrawn
    const own = await anne.page.evaluate(() => !!window.__room.localParticipant.getTrackPublication(window.__lk.Track.Source.Camera))
    assert.equal(own, false, "Anne's SDK still lists her camera")
    console.log(`# the withdrawn camera left Bruno's room ${removedMs} ms after the permission change`)
    for (const p of [anne, bruno]) assert.deepEqual(p.errors, [], `${p.name}'s page threw`)
  })
})
