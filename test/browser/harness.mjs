// Test harness: builds and runs a real `hemicycle --dev` server on free loopback ports, launches
// Debian's Chromium with fake camera and microphone, and drives participants through the web
// client exactly as a person would (labels and buttons, no test hooks in the page).
import { spawn, execFile } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises'
import { createWriteStream, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { chromium } from 'playwright-core'

const here = path.dirname(fileURLToPath(import.meta.url))
export const repoRoot = path.resolve(here, '../..')
export const artifactsDir = path.join(repoRoot, 'test', 'artifacts')
const execFileP = promisify(execFile)

export const chromiumPath = process.env.HEMICYCLE_CHROMIUM || '/usr/bin/chromium'

// The flags from the brief: fake devices that need no permission prompt, autoplay without a
// gesture, real host candidates instead of mDNS names, and nothing that phones home.
export const chromiumArgs = [
  '--no-sandbox',
  '--disable-dev-shm-usage',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--allow-loopback-in-peer-connection',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  // Headless pages are never "visible"; without these, timers and media in background contexts
  // are throttled and four participants on two cores starve each other.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
  // getDisplayMedia picks the whole (virtual) screen without a picker.
  '--auto-select-desktop-capture-source=Entire screen',
  '--enable-usermedia-screen-capturing'
]

// ensureArtifactsDir makes test/artifacts (ignored by the repository's .gitignore).
export async function ensureArtifactsDir () {
  await mkdir(artifactsDir, { recursive: true })
  return artifactsDir
}

async function freePort () {
  const srv = net.createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const { port } = srv.address()
  srv.close()
  await once(srv, 'close')
  return port
}

// startServer builds cmd/hemicycle (or takes $HEMICYCLE_BIN) and runs it with --dev in a scratch directory (its embedded
// store writes ./data there). It resolves once the server prints its address. config, when
// given, is YAML laid over the development defaults (e.g. a short programme delay); port, when
// given, is the HTTP port instead of a free one (turn.test.mjs serves on 443).
export async function startServer ({ logName = 'server.log', config, port } = {}) {
  const work = await mkdtemp(path.join(os.tmpdir(), 'hemicycle-browser-'))
  const extraArgs = []
  if (config) {
    const file = path.join(work, 'hemicycle.yaml')
    await writeFile(file, config)
    extraArgs.push('--config', file)
  }
  // HEMICYCLE_BIN runs an already built server instead (for instance one under investigation).
  let bin = process.env.HEMICYCLE_BIN
  if (!bin) {
    bin = path.join(work, 'hemicycle')
    try {
      await execFileP('go', ['build', '-o', bin, './cmd/hemicycle'], { cwd: repoRoot, maxBuffer: 16 << 20 })
    } catch (err) {
      throw new Error(`building cmd/hemicycle failed:\n${err.stderr || err.message}`)
    }
  }
  await ensureArtifactsDir()
  const log = createWriteStream(path.join(artifactsDir, logName))
  port ??= await freePort()
  const child = spawn(bin, ['--dev', '--port', String(port), '--udp-port', '0', '--tcp-port', '0', ...extraArgs], {
    cwd: work,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env }
  })
  const exited = once(child, 'exit')
  // A test process that exits without stop() (a signal, process.exit) takes its server and its
  // scratch directory (with a 60 MB binary) along.
  const killOnExit = () => {
    child.kill('SIGKILL')
    rmSync(work, { recursive: true, force: true })
  }
  process.on('exit', killOnExit)
  exited.then(() => process.off('exit', killOnExit))
  let seen = ''
  const ready = new Promise((resolve, reject) => {
    const onData = (chunk) => {
      log.write(chunk)
      if (seen.length < 1 << 16) seen += chunk.toString()
      // 127.0.0.1 in --dev, or the address a config's bind names (network.test.mjs binds a veth).
      const m = seen.match(/hemicycle listening on (http:\/\/[^\s/]+:\d+)/)
      if (m) resolve(m[1])
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    exited.then(([code, sig]) => reject(new Error(`hemicycle exited (${code ?? sig}) before listening:\n${seen.slice(-4000)}`)))
  })
  let timer
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`hemicycle did not print its address within 60 s:\n${seen.slice(-4000)}`)), 60000)
  })
  let baseURL
  try {
    baseURL = await Promise.race([ready, timeout])
  } catch (err) {
    child.kill('SIGKILL')
    await rm(work, { recursive: true, force: true })
    throw err
  } finally {
    clearTimeout(timer)
  }
  ready.catch(() => {}) // a later exit is the test's business, not an unhandled rejection
  return {
    baseURL,
    bin, // for its other subcommands, such as `token`
    async stop () {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const killed = await Promise.race([exited.then(() => true), delay(5000).then(() => false)])
        if (!killed) {
          child.kill('SIGKILL')
          await exited
        }
      }
      log.end()
      await rm(work, { recursive: true, force: true })
    }
  }
}

export function delay (ms) {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.())
}

// speechWav synthesises a few seconds of speech-like sound: voiced syllables (a fundamental and
// its harmonics under a rise-and-fall envelope) of varying pitch, separated by short pauses.
// A steady tone would be removed by noise suppression.
export function speechWav ({ rate = 48000, seconds = 6 } = {}) {
  const n = rate * seconds
  const samples = new Float32Array(n)
  for (let start = 0, k = 0; start < n; k++) {
    const len = Math.floor(rate * (0.15 + 0.1 * (k % 3)))
    const f0 = 140 + 60 * (k % 5)
    for (let j = 0; j < len && start + j < n; j++) {
      const envelope = Math.sin(Math.PI * j / len)
      let v = 0
      for (let harmonic = 1; harmonic <= 6; harmonic++) v += Math.sin(2 * Math.PI * f0 * harmonic * j / rate) / harmonic
      samples[start + j] = 0.35 * envelope * v
    }
    start += len + Math.floor(rate * 0.08)
  }
  return wavFile(samples, rate)
}

// toneWav makes a pure tone in bursts (on for onMs, then a short gap): one clear pitch that a
// spectrum can tell from the 1 kHz bleep, with gaps so that noise suppression does not take it
// for a steady background noise and remove it.
export function toneWav ({ hz = 440, rate = 48000, seconds = 6, onMs = 400, offMs = 100 } = {}) {
  const n = rate * seconds
  const samples = new Float32Array(n)
  const period = Math.floor(rate * (onMs + offMs) / 1000)
  const on = Math.floor(rate * onMs / 1000)
  const ramp = Math.floor(rate * 0.01) // 10 ms fades: no clicks, which would spread over the spectrum
  for (let j = 0; j < n; j++) {
    const k = j % period
    if (k >= on) continue
    const envelope = Math.min(1, k / ramp, (on - k) / ramp)
    samples[j] = 0.5 * envelope * Math.sin(2 * Math.PI * hz * j / rate)
  }
  return wavFile(samples, rate)
}

// wavFile encodes mono samples in [-1, 1] as 16-bit PCM WAV.
export function wavFile (samples, rate) {
  const n = samples.length
  const wav = Buffer.alloc(44 + n * 2)
  wav.write('RIFF', 0)
  wav.writeUInt32LE(36 + n * 2, 4)
  wav.write('WAVEfmt ', 8)
  wav.writeUInt32LE(16, 16) // PCM header size
  wav.writeUInt16LE(1, 20) // PCM
  wav.writeUInt16LE(1, 22) // mono
  wav.writeUInt32LE(rate, 24)
  wav.writeUInt32LE(rate * 2, 28)
  wav.writeUInt16LE(2, 32)
  wav.writeUInt16LE(16, 34)
  wav.write('data', 36)
  wav.writeUInt32LE(n * 2, 40)
  for (let j = 0; j < n; j++) wav.writeInt16LE(Math.round(Math.max(-1, Math.min(1, samples[j])) * 32767), 44 + j * 2)
  return wav
}

// launchBrowser starts Chromium whose fake microphone plays speechWav (or the given WAV) in a loop;
// beeps: true leaves Chromium's own fake microphone, a short beep once a second. executablePath,
// env and args (added to chromiumArgs) let a test run it through a wrapper, such as
// netns-chromium.sh, which starts it inside a network namespace.
export async function launchBrowser ({ audio, beeps = false, executablePath = chromiumPath, env, args = [] } = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hemicycle-chromium-'))
  const wav = path.join(dir, 'microphone.wav')
  await writeFile(wav, audio || speechWav())
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    ...(env ? { env } : {}),
    args: [...chromiumArgs, ...args, ...(beeps ? [] : [`--use-file-for-fake-audio-capture=${wav}`])]
  })
  const removeOnExit = () => rmSync(dir, { recursive: true, force: true })
  process.on('exit', removeOnExit)
  browser.on('disconnected', () => {
    process.off('exit', removeOnExit)
    rm(dir, { recursive: true, force: true }).catch(() => {})
  })
  return browser
}

// pageProbe runs in every page before its scripts: it remembers each RTCPeerConnection the SDK
// creates and offers a summary of what arrives, keyed by the tile it is shown in, so a test can
// tell whose video is being decoded. It changes nothing in the client's behaviour.
function pageProbe () {
  const Native = window.RTCPeerConnection
  const pcs = []
  window.RTCPeerConnection = class extends Native {
    constructor (...args) {
      super(...args)
      pcs.push(this)
    }
  }
  // Everything said through the live region, in order, as a screen reader would have heard it
  // (the visible notices fade after a few seconds).
  const announced = []
  document.addEventListener('DOMContentLoaded', () => {
    const region = document.getElementById('announcements')
    if (!region) return
    new MutationObserver((records) => {
      for (const r of records) for (const n of r.addedNodes) announced.push(n.textContent)
    }).observe(region, { childList: true })
  })
  window.__hemicycleProbe = {
    announced: () => announced.slice(),
    peerConnections: () => pcs,
    // iceSessions names each open connection's current ICE session (its local ufrag), which an
    // ICE restart or a new connection changes.
    iceSessions: () => pcs.filter((pc) => pc.connectionState !== 'closed')
      .map((pc) => /a=ice-ufrag:(\S+)/.exec(pc.localDescription?.sdp || '')?.[1])
      .filter(Boolean),
    async media () {
      const inbound = new Map()
      const outbound = { audioBytes: 0, videoBytes: 0 }
      for (const pc of pcs) {
        if (pc.connectionState === 'closed') continue
        const report = await pc.getStats()
        report.forEach((s) => {
          if (s.type === 'inbound-rtp' && s.trackIdentifier) {
            inbound.set(s.trackIdentifier, { kind: s.kind, framesDecoded: s.framesDecoded || 0, totalAudioEnergy: s.totalAudioEnergy || 0, bytes: s.bytesReceived || 0 })
          }
          if (s.type === 'outbound-rtp') {
            if (s.kind === 'audio') outbound.audioBytes += s.bytesSent || 0
            else outbound.videoBytes += s.bytesSent || 0
          }
        })
      }
      const video = {}
      const videoBytes = {}
      for (const tile of document.querySelectorAll('.tile')) {
        const track = tile.querySelector('video')?.srcObject?.getVideoTracks?.()[0]
        const st = track && inbound.get(track.id)
        if (st) {
          video[`${tile.dataset.identity}/${tile.dataset.source}`] = st.framesDecoded
          videoBytes[`${tile.dataset.identity}/${tile.dataset.source}`] = st.bytes
        }
      }
      const audio = {}
      for (const el of document.querySelectorAll('audio')) {
        const track = el.srcObject?.getAudioTracks?.()[0]
        const st = track && inbound.get(track.id)
        if (st) audio[el.dataset.identity] = st.totalAudioEnergy
      }
      return { video, videoBytes, audio, outbound }
    }
  }
}

// Participant is one person in their own browser context (own storage, own devices).
export class Participant {
  constructor (name, context, page) {
    this.name = name
    this.context = context
    this.page = page
    this.errors = []
    this.requests = [] // every URL the page fetched or opened a WebSocket to
    page.on('pageerror', (err) => this.errors.push(String(err)))
    page.on('request', (r) => this.requests.push(r.url()))
    page.on('websocket', (ws) => this.requests.push(ws.url()))
  }

  // foreignRequests lists what the page asked of anyone but the server at baseURL.
  foreignRequests (baseURL) {
    const http = new URL(baseURL)
    const ws = `ws://${http.host}/`
    return this.requests.filter((u) => !u.startsWith(`${http.origin}/`) && !u.startsWith(ws) && !u.startsWith('data:') && !u.startsWith('blob:'))
  }

  get identity () {
    return this.page.evaluate(() => document.querySelector('.tile[data-local="true"]')?.dataset.identity)
  }

  async media () {
    return this.page.evaluate(() => window.__hemicycleProbe.media())
  }

  async iceSessions () {
    return this.page.evaluate(() => window.__hemicycleProbe.iceSessions())
  }

  tile (identity, source = 'camera') {
    return this.page.locator(`.tile[data-identity="${identity}"][data-source="${source}"]`)
  }

  person (identity) {
    return this.page.locator(`.person[data-identity="${identity}"]`)
  }

  control (name) {
    return this.page.locator(`.controls [data-control="${name}"]`)
  }

  async close () {
    await this.context.close().catch(() => {})
  }
}

// openClient opens the client's home page (or another of the server's addresses, such as an
// invitation link's or /prepare) in a fresh context, with French as the browser language unless
// told otherwise.
export async function openClient (browser, baseURL, { locale = 'fr-FR', name = 'page', address = '/' } = {}) {
  const context = await browser.newContext({
    locale,
    viewport: { width: 1280, height: 800 },
    permissions: ['camera', 'microphone']
  })
  await context.addInitScript(pageProbe)
  const page = await context.newPage()
  const p = new Participant(name, context, page)
  await page.goto(new URL(address, baseURL).href)
  return p
}

// joinThroughUI fills the development form, goes through the lobby and enters the room, the way a
// newcomer does. quality "low" keeps four encoders within two cores; camera or mic false enters
// with that device off.
export async function joinThroughUI (browser, baseURL, { name, room, role = 'member', seat, quality = 'low', camera = true, mic = true }) {
  const p = await openClient(browser, baseURL, { name })
  const { page } = p
  const form = page.locator('form.dev-form')
  await form.getByLabel('Votre nom').fill(name)
  await form.getByLabel('Salle').fill(room)
  await form.getByLabel('Rôle').selectOption(role)
  if (seat) await form.getByLabel('Siège (facultatif)').fill(String(seat))
  await form.getByRole('button', { name: 'Continuer' }).click()
  await enterFromLobby(p, { room, quality, camera, mic })
  return p
}

// enterFromLobby goes through the lobby a participant's page shows (after the development form
// or an invitation link) and enters the room.
export async function enterFromLobby (p, { room, quality = 'low', camera = true, mic = true }) {
  const { page } = p
  await page.getByRole('heading', { level: 1, name: 'Avant d’entrer' }).waitFor()
  await page.waitForFunction(() => document.querySelector('video.preview')?.videoWidth > 0)
  await page.getByLabel('Qualité vidéo envoyée').selectOption(quality)
  if (quality === 'low') await page.waitForFunction(() => document.querySelector('video.preview')?.videoHeight === 360)
  if (!camera) await page.getByLabel('Entrer avec la caméra activée').uncheck()
  if (!mic) await page.getByLabel('Entrer avec le micro activé').uncheck()
  await page.getByLabel('J’ai pris connaissance de ces informations').check()
  await page.getByRole('button', { name: 'Entrer dans la séance' }).click()
  // Generous waits: joining is the slowest step when the machine is busy.
  await page.getByRole('heading', { level: 1, name: `Séance « ${room} »` }).waitFor({ timeout: 60000 })
  await page.locator('.tile[data-local="true"]').waitFor({ timeout: 60000 })
}

// waitFor polls check() until it returns a truthy value, failing after timeoutMs with the last
// state it saw; it asserts what happens, not how fast.
export async function waitFor (what, check, { timeoutMs = 30000, intervalMs = 500 } = {}) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    last = await check()
    if (last && last.ok !== false) return last
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; last state: ${JSON.stringify(last?.state ?? last)}`)
    }
    await delay(intervalMs)
  }
}

// textOf waits until a locator's text matches pattern, and returns it.
export async function textOf (locator, pattern, what) {
  let last = ''
  await waitFor(what || `text ${pattern}`, async () => {
    last = await locator.innerText().catch(() => '')
    return { ok: pattern.test(last), state: last }
  }, { timeoutMs: 30000, intervalMs: 200 })
  return last
}

// expectMediaFrom waits until `viewer` decodes new video frames from, and receives sound energy
// from, each of `senders`.
export async function expectMediaFrom (viewer, senders, { video = true, audio = true, source = 'camera', minFrames = 15, timeoutMs = 30000 } = {}) {
  const ids = await Promise.all(senders.map((s) => (typeof s === 'string' ? s : s.identity)))
  const start = await viewer.media()
  return waitFor(`${viewer.name} to receive media from ${ids.join(', ')}`, async () => {
    const now = await viewer.media()
    const missing = []
    for (const id of ids) {
      const key = `${id}/${source}`
      if (video && !((now.video[key] ?? 0) >= (start.video[key] ?? 0) + minFrames)) missing.push(`video ${key}`)
      if (audio && !((now.audio[id] ?? 0) > (start.audio[id] ?? 0))) missing.push(`audio ${id}`)
    }
    return { ok: missing.length === 0, state: { missing, start, now } }
  }, { timeoutMs })
}

// exampleRoster is the first `seats` lines of docs/example-roster.csv (seven members in office),
// with its header, as a clerk pastes it.
export function exampleRoster (seats = 7) {
  const lines = readFileSync(path.join(repoRoot, 'docs', 'example-roster.csv'), 'utf8').trimEnd().split('\n')
  return `${lines.slice(0, seats + 1).join('\n')}\n`
}

// api calls the server's HTTP API with a bearer token and answers { status, data }: the JSON
// answer decoded, or its text when it is not JSON.
export async function api (baseURL, method, path, token, body) {
  const res = await fetch(`${baseURL}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await res.text()
  let data = text
  try { data = JSON.parse(text) } catch {}
  return { status: res.status, data }
}

// inboundFrom reads, in the viewer's page, the camera and microphone tracks shown for one sender
// (their ids, null when none is shown) and their inbound-rtp counters (null when the page's open
// connections have no stats for them).
export function inboundFrom (viewer, identity) {
  return viewer.page.evaluate(async (id) => {
    const byTrack = new Map()
    for (const pc of window.__hemicycleProbe.peerConnections()) {
      if (pc.connectionState === 'closed') continue
      ;(await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.trackIdentifier) byTrack.set(s.trackIdentifier, s)
      })
    }
    const video = document.querySelector(`.tile[data-identity="${id}"][data-source="camera"] video`)?.srcObject?.getVideoTracks?.()[0]
    const audio = document.querySelector(`audio[data-identity="${id}"]`)?.srcObject?.getAudioTracks?.()[0]
    const v = video && byTrack.get(video.id)
    const a = audio && byTrack.get(audio.id)
    return {
      videoTrack: video?.id ?? null,
      audioTrack: audio?.id ?? null,
      video: v ? { frames: v.framesDecoded || 0, bytes: v.bytesReceived || 0, width: v.frameWidth || 0, keyframes: v.keyFramesDecoded || 0, plis: v.pliCount || 0 } : null,
      audio: a ? { energy: a.totalAudioEnergy || 0, bytes: a.bytesReceived || 0 } : null
    }
  }, identity)
}

// axeSerious runs axe-core's WCAG 2.1 A/AA and best-practice rules on what selector finds in the
// page (injected through the DevTools protocol: the page's CSP rightly refuses inline scripts)
// and lists its serious and critical violations, each with the elements it names.
export async function axeSerious (page, selector = 'body') {
  await page.evaluate(readFileSync(path.join(here, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8'))
  const results = await page.evaluate((sel) => window.axe.run(sel, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] }
  }), selector)
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)
}

// devAdminToken is a room admin's token for the development server's public key pair
// (devkey/secret), for RoomService calls.
export function devAdminToken (room) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  const body = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc({ iss: 'devkey', sub: 'browser-test-admin', nbf: now - 5, exp: now + 600, video: { room, roomAdmin: true } })}`
  return `${body}.${createHmac('sha256', 'secret').update(body).digest('base64url')}`
}
