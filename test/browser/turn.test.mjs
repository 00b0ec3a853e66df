// A member behind a firewall that lets out only TCP to port 443 (no UDP, no other port) joins
// from Chromium and sees and hears the chamber, and is seen and heard, through the server's
// embedded TURN relay over TLS on 443 (issue 20). As in a deployment where a reverse proxy
// holds 443 for HTTPS, the web client and signalling are served on 443 of one address and TURN
// over TLS on 443 of another.
//
// The TURN certificate comes from a CA this test creates; the member's Chromium trusts it
// through the NSS database in its $HOME (certutil, Debian's libnss3-tools), so the certificate
// is really verified, as a public one would be. Needs root, iproute2, nftables, openssl and
// certutil; without them it fails and says what is missing.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { startServer, launchBrowser, joinThroughUI, waitFor, ensureArtifactsDir } from './harness.mjs'
import { PrivateLink } from './netlink.mjs'

const wrapper = fileURLToPath(new URL('./netns-chromium.sh', import.meta.url))
const execFileP = promisify(execFile)

async function run (cmd, args) {
  try {
    return (await execFileP(cmd, args)).stdout
  } catch (err) {
    const why = err.code === 'ENOENT' ? `the ${cmd} command was not found` : (err.stderr || err.message).trim()
    throw new Error(`${cmd} ${args.join(' ')} failed: ${why}`)
  }
}

// secondAddress gives the host a second address, beside the link's 10.213.x.y, that the
// namespace reaches through the link; it goes with the link's devices.
async function secondAddress (link) {
  const parts = link.hostIP.split('.')
  parts[1] = String(Number(parts[1]) - 1)
  const addr = parts.join('.')
  await run('ip', ['addr', 'add', `${addr}/32`, 'dev', link.hostDev])
  await run('ip', ['-n', link.ns, 'route', 'add', `${addr}/32`, 'via', link.hostIP])
  return addr
}

// certificates makes a CA, a certificate it signs for ip, and a $HOME whose NSS database trusts
// the CA (where Chromium on Linux looks for locally trusted roots).
async function certificates (dir, ip) {
  const f = (name) => path.join(dir, name)
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=Hemicycle TURN test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'])
  await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', f('turn.key'), '-out', f('turn.csr'), '-subj', `/CN=${ip}`])
  await writeFile(f('ext.cnf'), `subjectAltName=IP:${ip}\nextendedKeyUsage=serverAuth\n`)
  await run('openssl', ['x509', '-req', '-in', f('turn.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
    '-CAcreateserial', '-out', f('turn.pem'), '-days', '2', '-extfile', f('ext.cnf')])
  const home = f('home')
  const nssdb = `sql:${path.join(home, '.pki', 'nssdb')}`
  await mkdir(path.join(home, '.pki', 'nssdb'), { recursive: true })
  await run('certutil', ['-N', '-d', nssdb, '--empty-password'])
  await run('certutil', ['-A', '-d', nssdb, '-n', 'hemicycle-turn-test-ca', '-t', 'C,,', '-i', f('ca.pem')])
  return { cert: f('turn.pem'), key: f('turn.key'), home }
}

// media is what a page receives (harness.mjs's probe): frames decoded per tile, audio energy
// per sender.
async function media (p) {
  return p.page.evaluate(() => window.__hemicycleProbe.media())
}

// expectFlow waits until viewer decodes new video frames from sender and hears sound from them.
async function expectFlow (viewer, sender) {
  const start = await media(viewer)
  await waitFor(`${viewer.name} to decode video and hear sound from ${sender.name}`, async () => {
    const now = await media(viewer)
    const frames = (now.video[`${sender.id}/camera`] || 0) - (start.video[`${sender.id}/camera`] || 0)
    const energy = (now.audio[sender.id] || 0) - (start.audio[sender.id] || 0)
    return { ok: frames >= 15 && energy > 0, state: { frames, energy } }
  }, { timeoutMs: 30000 })
}

// paths is the local end of each connected peer connection's selected pair.
function paths (p) {
  return p.page.evaluate(async () => {
    const out = []
    for (const pc of window.__hemicycleProbe.peerConnections()) {
      if (pc.connectionState !== 'connected') continue
      const report = await pc.getStats()
      report.forEach((s) => {
        if (s.type !== 'transport' || !s.selectedCandidatePairId) return
        const local = report.get(report.get(s.selectedCandidatePairId)?.localCandidateId)
        out.push({ type: local?.candidateType, relayProtocol: local?.relayProtocol, address: local?.address })
      })
    }
    return out
  })
}

describe('a member who can reach only TCP 443 joins through TURN over TLS', { timeout: 240000 }, () => {
  const room = `turn-${randomBytes(3).toString('hex')}`
  const link = new PrivateLink()
  let forgetLink = () => {}
  let scratch
  let server
  let chamberBrowser
  let remoteBrowser
  let anne
  let bruno

  before(async () => {
    forgetLink = link.removeOnExit()
    await ensureArtifactsDir()
    await link.create()
    const signalIP = await secondAddress(link)
    scratch = await mkdtemp(path.join(os.tmpdir(), 'hemicycle-turn-'))
    const tls = await certificates(scratch, link.hostIP)
    server = await startServer({
      logName: 'server-turn.log',
      port: 443,
      config: `bind: ${signalIP}\nturn:\n  domain: ${link.hostIP}\n  bind: ${link.hostIP}\n  tls_port: 443\n` +
        `  cert_file: ${tls.cert}\n  key_file: ${tls.key}\n`
    })
    await link.onlyTCP(443)
    // An http:// page on a non-loopback address is not a secure context; getUserMedia needs one.
    const secure = `--unsafely-treat-insecure-origin-as-secure=${server.baseURL}`
    ;[chamberBrowser, remoteBrowser] = await Promise.all([
      launchBrowser({ args: [secure] }),
      launchBrowser({ args: [secure], executablePath: wrapper, env: { ...process.env, HOME: tls.home, HEMICYCLE_NETNS: link.ns } })
    ])
  }, { timeout: 150000 })

  after(async () => {
    await Promise.all([anne?.close(), bruno?.close()])
    await Promise.all([chamberBrowser?.close(), remoteBrowser?.close()])
    await server?.stop()
    link.remove()
    forgetLink()
    if (scratch) await rm(scratch, { recursive: true, force: true })
    assert.deepEqual(await link.leftovers(), [], 'the namespace or the veth pair outlived the test')
  })

  it('the member and the chamber see and hear each other, the member\'s media relayed over TLS', async (t) => {
    ;[anne, bruno] = await Promise.all([
      joinThroughUI(chamberBrowser, server.baseURL, { name: 'Anne Martin', room, role: 'chair' }),
      joinThroughUI(remoteBrowser, server.baseURL, { name: 'Bruno Petit', room, role: 'member' })
    ])
    for (const p of [anne, bruno]) p.id = await p.identity
    await Promise.all([expectFlow(anne, bruno), expectFlow(bruno, anne)])
    const used = await paths(bruno)
    t.diagnostic(`the member's connections: ${JSON.stringify(used)}`)
    assert.ok(used.length >= 2, `the member has ${used.length} connected peer connections, want a publisher and a subscriber`)
    for (const u of used) assert.deepEqual([u.type, u.relayProtocol], ['relay', 'tls'], `a connection of the member went ${JSON.stringify(u)}`)
    for (const p of [anne, bruno]) assert.deepEqual(p.errors, [], `${p.name}'s page threw`)
  }, { timeout: 90000 })
})
