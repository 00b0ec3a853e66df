// PrivateLink: a network namespace joined to this one by a veth pair, for browser tests of weak
// links (the Go tests' equivalent is test/netlab). A Chromium started in the namespace
// (netns-chromium.sh) reaches the server only through the pair, whose two directions can be
// shaped (tc tbf), made lossy (nftables random drops), cut, or restricted to one TCP port. The
// kernel here has tbf and nftables but no netem.
//
// Needs root, iproute2 and nftables. Without them create() fails and says what is missing: the
// tests do not skip. Everything is named after the PID; remove() (synchronous, for exit
// handlers) deletes it, and create() first removes what runs killed outright left behind.
import { execFile, execFileSync } from 'node:child_process'
import { access, constants } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { startServer, launchBrowser } from './harness.mjs'

const needs = 'a PrivateLink needs root, iproute2 and nftables (it creates a network namespace and a veth pair; CI runs the tests as root)'

// run runs one command and says which one failed, and how; input, if given, is its stdin.
function run (cmd, args, input) {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, (err, stdout, stderr) => {
      if (!err) return resolve(stdout)
      const why = err.code === 'ENOENT' ? `the ${cmd} command was not found` : (stderr || err.message).trim()
      reject(new Error(`${needs}: ${cmd} ${args.join(' ')}${input ? ` <<< ${JSON.stringify(input)}` : ''} failed: ${why}`))
    })
    // A command that does not read its stdin may be gone before it is closed: that is no error.
    child.stdin.on('error', () => {})
    child.stdin.end(input)
  })
}

const ip = (...args) => run('ip', args)

// quietly is for cleanup, which must go on whatever is already gone.
function quietly (...args) {
  try {
    execFileSync('ip', args, { stdio: 'ignore', timeout: 5000 })
  } catch {
    // already removed, or never created
  }
}

const prefix = 'hcnd' // Hemicycle network drop

// The two directions across the link.
export const toPeer = 'toPeer' // what reaches the namespace: its client's downlink
export const fromPeer = 'fromPeer' // what leaves it: its client's uplink

function alive (pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

function ipv4 (text) {
  return text.split('.').reduce((n, part) => n * 256 + Number(part), 0)
}

// One nftables table inside the namespace holds the loss and onlyTCP rules; it goes with the
// namespace. Loss to the peer is applied where packets arrive (after the host end's tbf, as loss
// after a bottleneck), loss from it where they leave.
const table = `table inet netlab {
  chain from_peer { type filter hook postrouting priority 0; policy accept; }
  chain to_peer { type filter hook prerouting priority 0; policy accept; }
  chain only_tcp { type filter hook output priority 0; policy accept; }
}
`

// PrivateLink's host end carries hostIP, the namespace's end peerIP, on a /30 of 10.213.0.0/16
// chosen from the PID so that concurrent runs do not meet (the Go lab uses 10.214.0.0/16).
// Interface names stay within the kernel's 15 characters.
export class PrivateLink {
  constructor (pid = process.pid) {
    this.ns = `${prefix}-${pid}`
    this.hostDev = `${prefix}${pid}h`
    this.peerDev = `${prefix}${pid}b`
    const block = pid % 16384
    const base = `10.213.${block >> 6}.${(block & 63) << 2}`
    this.net = ipv4(base)
    this.hostIP = `10.213.${block >> 6}.${((block & 63) << 2) + 1}`
    this.peerIP = `10.213.${block >> 6}.${((block & 63) << 2) + 2}`
  }

  // create builds the namespace and the link, after removing what killed runs left behind.
  async create () {
    await PrivateLink.sweep()
    // The /30 must not overlap a network this machine already has (or another run's link).
    const taken = (await ip('-4', '-o', 'addr', 'show')).matchAll(/inet (\d+\.\d+\.\d+\.\d+)\/(\d+)/g)
    for (const [, addr, len] of taken) {
      const bits = Math.min(Number(len), 30)
      const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0
      if (((ipv4(addr) & mask) >>> 0) === ((this.net & mask) >>> 0)) {
        throw new Error(`${addr}/${len} is already configured on this machine: ${this.hostIP}/30 is not free for the test link`)
      }
    }
    await ip('netns', 'add', this.ns)
    await ip('link', 'add', this.hostDev, 'type', 'veth', 'peer', 'name', this.peerDev, 'netns', this.ns)
    await ip('addr', 'add', `${this.hostIP}/30`, 'dev', this.hostDev)
    await ip('link', 'set', this.hostDev, 'up')
    await ip('-n', this.ns, 'addr', 'add', `${this.peerIP}/30`, 'dev', this.peerDev)
    await ip('-n', this.ns, 'link', 'set', 'lo', 'up')
    await ip('-n', this.ns, 'link', 'set', this.peerDev, 'up')
    await this.#nft(table)
  }

  // down takes the namespace's end down: everything the namespace sends or expects is lost, and
  // the host end (with the server's sockets on hostIP) stays as it is.
  async down () {
    await ip('-n', this.ns, 'link', 'set', this.peerDev, 'down')
  }

  async up () {
    await ip('-n', this.ns, 'link', 'set', this.peerDev, 'up')
  }

  // shape limits one direction to kbit kilobits per second with a token bucket (a 16 kB burst,
  // at most 100 ms of queue, beyond which packets drop), on the egress of the end it leaves
  // from. Shaping again replaces the limit.
  async shape (dir, kbit) {
    await run('tc', [...this.#qdisc(dir, 'replace'), 'root', 'tbf', 'rate', `${kbit}kbit`, 'burst', '16kb', 'latency', '100ms'])
  }

  async unshape (dir) {
    await run('tc', [...this.#qdisc(dir, 'del'), 'root'])
  }

  // qdiscStats is what tc says of one direction's qdisc (sent, dropped, overlimits), to show in
  // a test's diagnostics what the shaper did.
  async qdiscStats (dir) {
    return (await run('tc', ['-s', ...this.#qdisc(dir, 'show')])).trim()
  }

  #qdisc (dir, verb) {
    if (dir === toPeer) return ['qdisc', verb, 'dev', this.hostDev]
    if (dir === fromPeer) return ['-n', this.ns, 'qdisc', verb, 'dev', this.peerDev]
    throw new Error(`${dir} is not a direction: use toPeer or fromPeer`)
  }

  // loss drops percent of one direction's packets at random; setting it again replaces the rate.
  async loss (dir, percent) {
    if (!(percent >= 0 && percent <= 100)) throw new Error(`a loss of ${percent} % is not a percentage`)
    const [chain, match] = this.#lossChain(dir)
    // numgen's values stop at 99: a silent path (100 %) drops everything.
    const drop = percent === 100 ? 'drop' : `numgen random mod 100 < ${percent} drop`
    await this.#nft(`flush chain inet netlab ${chain}\nadd rule inet netlab ${chain} ${match} ${drop}\n`)
  }

  async noLoss (dir) {
    const [chain] = this.#lossChain(dir)
    await this.#nft(`flush chain inet netlab ${chain}\n`)
  }

  #lossChain (dir) {
    if (dir === toPeer) return ['to_peer', `iifname "${this.peerDev}"`]
    if (dir === fromPeer) return ['from_peer', `oifname "${this.peerDev}"`]
    throw new Error(`${dir} is not a direction: use toPeer or fromPeer`)
  }

  // onlyTCP lets out of the namespace only TCP to port (and loopback): a network that blocks UDP
  // and every port but one. allTraffic lifts it.
  async onlyTCP (port) {
    await this.#nft('flush chain inet netlab only_tcp\n' +
      'add rule inet netlab only_tcp oifname "lo" accept\n' +
      `add rule inet netlab only_tcp tcp dport ${Number(port)} accept\n` +
      'add rule inet netlab only_tcp drop\n')
  }

  async allTraffic () {
    await this.#nft('flush chain inet netlab only_tcp\n')
  }

  #nft (rules) {
    return run('ip', ['netns', 'exec', this.ns, 'nft', '-f', '-'], rules)
  }

  // remove deletes the link (both ends go with the host end, even if something still runs in
  // the namespace) and the namespace's name. Synchronous, so that an exit handler can call it.
  remove () {
    quietly('link', 'del', this.hostDev)
    quietly('netns', 'del', this.ns)
  }

  // removeOnExit removes the link also when the process ends early (an exception, SIGINT or
  // SIGTERM); the returned function undoes the handlers once the test has removed it itself.
  removeOnExit () {
    const cleanUp = () => this.remove()
    const onSignal = (signal) => {
      cleanUp()
      process.exit(signal === 'SIGINT' ? 130 : 143)
    }
    process.on('exit', cleanUp)
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    return () => {
      process.off('exit', cleanUp)
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  }

  async leftovers () {
    const namespaces = (await ip('netns', 'list')).split('\n').filter((l) => l.split(' ')[0] === this.ns)
    const links = (await ip('-o', 'link', 'show')).split('\n').filter((l) => l.includes(this.hostDev) || l.includes(this.peerDev))
    return [...namespaces, ...links]
  }

  // sweep removes the namespaces and links of runs whose process is gone (killed with SIGKILL,
  // which leaves no chance to clean up).
  static async sweep () {
    const pids = new Set()
    for (const line of (await ip('netns', 'list')).split('\n')) {
      const m = new RegExp(`^${prefix}-(\\d+)( |$)`).exec(line)
      if (m) pids.add(Number(m[1]))
    }
    for (const line of (await ip('-o', 'link', 'show')).split('\n')) {
      const m = new RegExp(`^\\d+: ${prefix}(\\d+)h[@:]`).exec(line)
      if (m) pids.add(Number(m[1]))
    }
    for (const pid of pids) {
      if (pid !== process.pid && !alive(pid)) new PrivateLink(pid).remove()
    }
  }
}

const wrapper = fileURLToPath(new URL('./netns-chromium.sh', import.meta.url))

// LinkLab is the stage of a browser test over a PrivateLink: the link, a `hemicycle --dev` whose
// HTTP, signalling and media are on the link's host end only, a Chromium `here` (this namespace)
// and a Chromium `there` (the link's namespace, reaching the server only through the link).
export class LinkLab {
  link = new PrivateLink()
  server
  here
  there
  #forget = () => {}

  // start builds the stage; config adds to the server's configuration. The link exists before the server starts: in --dev the SFU opens one
  // UDP socket per local address present at its start (sfu/listen.go). An http:// page on a
  // non-loopback address is not a secure context, and getUserMedia needs one: both browsers
  // treat the server's origin as secure.
  async start ({ logName, config = '' }) {
    this.#forget = this.link.removeOnExit()
    await access(wrapper, constants.X_OK).catch(() => { throw new Error(`${wrapper} must be executable (chmod +x)`) })
    await this.link.create()
    this.server = await startServer({ logName, config: `bind: ${this.link.hostIP}\n${config}` })
    const secure = `--unsafely-treat-insecure-origin-as-secure=${this.server.baseURL}`
    ;[this.here, this.there] = await Promise.all([
      launchBrowser({ args: [secure] }),
      launchBrowser({ args: [secure], executablePath: wrapper, env: { ...process.env, HEMICYCLE_NETNS: this.link.ns } })
    ])
  }

  // stop closes the browsers, stops the server and removes the link, whatever start reached.
  async stop () {
    await Promise.all([this.here?.close(), this.there?.close()])
    await this.server?.stop()
    this.link.remove()
    this.#forget()
  }
}
