// Who speaks, as the others see it: the server announces a speaker from the share of voiced
// packets over half a second (sfu, speaking), so short bursts of sound are caught and silence
// ends a speaker again. Anne speaks, Bruno (microphone off) watches her tile's "speaking" state:
// - with Chromium's own fake microphone, a short beep once a second;
// - with a sentence spoken by espeak-ng, then four seconds of silence, in a loop: each sentence
//   makes her a speaker, and each silence ends it.
// The delays are logged; the bounds only catch a detection that does not happen.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { startServer, launchBrowser, joinThroughUI, waitFor, delay, ensureArtifactsDir, wavFile } from './harness.mjs'

// spokenWav is a sentence from espeak-ng followed by silenceS of silence, as mono PCM WAV.
function spokenWav (text, silenceS) {
  const out = execFileSync('espeak-ng', ['-v', 'fr', '-s', '150', '--stdout', text])
  const rate = out.readUInt32LE(24)
  const data = out.indexOf('data', 12)
  const pcm = out.subarray(data + 8)
  const speech = pcm.length / 2
  const samples = new Float32Array(speech + Math.round(silenceS * rate))
  for (let i = 0; i < speech; i++) samples[i] = pcm.readInt16LE(i * 2) / 32768
  return { wav: wavFile(samples, rate), speechMs: Math.round(1000 * speech / rate), periodMs: Math.round(1000 * samples.length / rate) }
}

// speakingSpans samples, every 100 ms for ms, whether the viewer shows identity speaking, and
// returns the spans (start and end, ms from the first sample) when it did.
async function speakingSpans (viewer, identity, ms) {
  const spans = []
  const t0 = Date.now()
  let open = null
  while (Date.now() - t0 < ms) {
    const speaking = (await viewer.tile(identity).getAttribute('data-speaking')) === 'true'
    const at = Date.now() - t0
    if (speaking && open === null) open = at
    if (!speaking && open !== null) {
      spans.push([open, at])
      open = null
    }
    await delay(100)
  }
  if (open !== null) spans.push([open, null])
  return spans
}

describe('the active speaker from short bursts of sound', { timeout: 240000 }, () => {
  const room = `parole-${randomBytes(3).toString('hex')}`
  let server
  const browsers = []

  before(async () => {
    await ensureArtifactsDir()
    server = await startServer({ logName: 'server-speakers.log' })
  })

  after(async () => {
    for (const b of browsers) await b.close().catch(() => {})
    await server?.stop()
  })

  async function speakerAndListener (name, launch) {
    const speakerBrowser = await launchBrowser(launch)
    const listenerBrowser = await launchBrowser()
    browsers.push(speakerBrowser, listenerBrowser)
    const anne = await joinThroughUI(speakerBrowser, server.baseURL, { name, room, camera: false })
    const bruno = await joinThroughUI(listenerBrowser, server.baseURL, { name: `Bruno ${name}`, room, camera: false, mic: false })
    const id = await anne.identity
    await bruno.tile(id).waitFor()
    return { anne, bruno, id }
  }

  it("Chromium's fake microphone, a beep a second: the beeper is a speaker", async () => {
    const { anne, bruno, id } = await speakerAndListener('Anne Bip', { beeps: true })
    const t0 = Date.now()
    await waitFor("Bruno to see Anne's beeps as speech", async () => (await bruno.tile(id).getAttribute('data-speaking')) === 'true',
      { timeoutMs: 15000, intervalMs: 100 })
    console.log(`# the beeper shown speaking ${Date.now() - t0} ms after Bruno saw her tile`)
    await anne.close()
    await bruno.close()
  })

  it('a sentence, then 4 s of silence, in a loop: each sentence makes a speaker, each silence ends it', async () => {
    const sentence = spokenWav('Madame la présidente, je demande la parole.', 4)
    const { anne, bruno, id } = await speakerAndListener('Anne Parole', { audio: sentence.wav })
    const spans = await speakingSpans(bruno, id, 3 * sentence.periodMs)
    console.log(`# sentence of ${sentence.speechMs} ms every ${sentence.periodMs} ms; Bruno saw Anne speaking over (ms) ${JSON.stringify(spans)}`)
    const closed = spans.filter(([, end]) => end !== null)
    assert.ok(spans.length >= 2, `each sentence should make Anne a speaker: spans ${JSON.stringify(spans)}`)
    assert.ok(closed.length >= 2, `each silence should end her speaking: spans ${JSON.stringify(spans)}`)
    for (const [start, end] of closed) {
      assert.ok(end - start <= sentence.speechMs + 2500, `Anne stayed a speaker ${end - start} ms for a sentence of ${sentence.speechMs} ms: ${JSON.stringify(spans)}`)
    }
    for (const p of [anne, bruno]) assert.deepEqual(p.errors, [], `${p.name}'s page threw`)
    await anne.close()
    await bruno.close()
  })
})
