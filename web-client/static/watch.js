// The public watch page, /watch/{room} (or /watch.html?room=…): no login. It asks the server for
// a viewer token (rate-limited, short-lived, random identity), joins as a hidden viewer that
// receives only the delayed programme, and shows the session's state as it reaches the
// programme (delayed too, so that the item shown is the one being debated on screen).
import { Room, RoomEvent, Track } from '/vendor/livekit-client.esm.mjs'
import { startPage } from '/js/i18n.js'
import { CaptionBand, CaptionFeed, followCaptions } from '/js/captions.js'

// The page's words come from the client's catalogs (i18n/), in the language every page picks.
const { t } = startPage()

const $ = (id) => document.getElementById(id)
const retryMs = 5000

// roomName reads /watch/{room}, else ?room=.
function roomName () {
  const m = location.pathname.match(/^\/watch\/([^/]+)\/?$/)
  if (m) return decodeURIComponent(m[1])
  return new URLSearchParams(location.search).get('room') || ''
}

function signalUrl () {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}`
}

function setStatus (state, text) {
  const el = $('watch-status')
  el.dataset.state = state
  el.textContent = text
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// viewerToken asks for a token until the room has a public programme.
async function viewerToken (room) {
  for (;;) {
    let res
    try {
      res = await fetch(`/api/rooms/${encodeURIComponent(room)}/viewer-token`, { method: 'POST', cache: 'no-store' })
    } catch {
      res = null
    }
    if (res && res.ok) return res.json()
    if (res && res.status === 503) {
      const hls = `/live/${encodeURIComponent(room)}/index.m3u8`
      const note = $('hls-note')
      note.replaceChildren(document.createTextNode(t('watch.hls') + ' '), Object.assign(document.createElement('a'), { href: hls, textContent: hls }))
      note.hidden = false
      setStatus('full', t('watch.status.full'))
    } else if (res && res.status === 429) {
      setStatus('waiting', t('watch.status.busy'))
    } else {
      setStatus('waiting', t('watch.status.waiting'))
    }
    const wait = Number(res?.headers.get('Retry-After')) * 1000
    await sleep(Number.isFinite(wait) && wait > 0 ? Math.max(wait, retryMs) : retryMs)
  }
}

class Watch {
  constructor (room) {
    this.roomName = room
    this.room = null
    this.events = null
    this.audio = new Map() // track sid -> <audio>
    // Captions come as LiveKit transcriptions; the speakers are not participants a viewer
    // sees, so a name shows only for one the SDK knows.
    this.captions = new CaptionFeed()
    const band = new CaptionBand({ t, feed: this.captions, nameOf: (id) => this.room?.getParticipantByIdentity(id)?.name || '' })
    document.querySelector('.screen').append(band.lines)
    $('captions').append(band.settings)
  }

  async start () {
    document.title = t('watch.titleRoom', { room: this.roomName })
    $('watch-title').textContent = t('watch.titleRoom', { room: this.roomName })
    $('play').addEventListener('click', () => this.room?.startAudio().catch(() => {}))
    for (;;) {
      setStatus('connecting', t('watch.status.connecting'))
      const grant = await viewerToken(this.roomName)
      $('delay-note').textContent = t('watch.delay', { seconds: Math.round(grant.delaySeconds) })
      const ended = await this.watch(grant)
      await ended // the connection ended: get a new token (the old one may have expired)
      this.stopEvents()
      await sleep(retryMs)
    }
  }

  // watch connects and resolves with a promise that settles when the connection is lost.
  async watch (grant) {
    const room = new Room({ singlePeerConnection: false, adaptiveStream: false, dynacast: false })
    this.room = room
    let ended
    const done = new Promise((resolve) => { ended = resolve })
    room
      .on(RoomEvent.TrackSubscribed, (track, pub) => this.attach(track, pub))
      .on(RoomEvent.TrackUnsubscribed, (track, pub) => this.detach(track, pub))
      .on(RoomEvent.TrackMuted, (pub) => this.showInterpreter(pub))
      .on(RoomEvent.TrackUnmuted, (pub) => this.showInterpreter(pub))
      .on(RoomEvent.AudioPlaybackStatusChanged, () => { $('play').hidden = room.canPlaybackAudio })
      .on(RoomEvent.Reconnecting, () => setStatus('reconnecting', t('watch.status.reconnecting')))
      .on(RoomEvent.Reconnected, () => setStatus('live', t('watch.status.live')))
      .on(RoomEvent.Disconnected, () => ended())
    followCaptions(room, this.captions)
    try {
      await room.connect(signalUrl(), grant.token, { autoSubscribe: true })
    } catch {
      ended()
      return done
    }
    setStatus('live', t('watch.status.live'))
    $('play').hidden = room.canPlaybackAudio
    this.startEvents(grant.token)
    return done
  }

  attach (track, pub) {
    if (track.kind === Track.Kind.Video) {
      const interp = pub.trackName === 'programme-interpreter'
      track.attach(interp ? $('interpreter-video') : $('programme-video'))
      if (interp) this.showInterpreter(pub)
      return
    }
    const el = track.attach()
    this.audio.set(pub.trackSid, el)
    $('audio-sinks').append(el)
  }

  detach (track, pub) {
    track.detach()
    this.audio.get(pub.trackSid)?.remove()
    this.audio.delete(pub.trackSid)
  }

  showInterpreter (pub) {
    if (pub.trackName !== 'programme-interpreter') return
    $('interpreter-video').hidden = pub.isMuted
  }

  // startEvents follows the session's state and the bleeps, delayed like the media.
  startEvents (token) {
    this.stopEvents()
    const url = `/api/rooms/${encodeURIComponent(this.roomName)}/programme/events?access_token=${encodeURIComponent(token)}`
    const es = new EventSource(url)
    es.addEventListener('state', (e) => this.showState(JSON.parse(e.data)))
    es.addEventListener('bleep', (e) => { $('bleep-note').hidden = !JSON.parse(e.data).on })
    this.events = es
  }

  stopEvents () {
    this.events?.close()
    this.events = null
  }

  showState (msg) {
    const view = msg.view || {}
    $('session-title').textContent = view.session?.title || ''
    $('closed-door-note').hidden = !view.session?.closedDoor
    const items = view.items || []
    const open = items.find((i) => i.id === view.openItem)
    $('current-item').textContent = open ? t('watch.item', { title: open.title }) : t('watch.noItem')
    const voteEl = $('current-vote')
    const votes = view.votes || []
    const openVote = votes.find((v) => v.id === view.openVote)
    const closed = votes.filter((v) => v.result)
    if (openVote) {
      voteEl.textContent = openVote.question ? t('watch.voteQuestion', { question: openVote.question }) : t('watch.vote')
      voteEl.hidden = false
    } else if (closed.length > 0) {
      const r = closed[closed.length - 1].result
      voteEl.textContent = t(r.adopted ? 'watch.adopted' : 'watch.rejected', { for: r.for, against: r.against, abstain: r.abstain })
      voteEl.hidden = false
    } else {
      voteEl.hidden = true
    }
  }
}

const room = roomName()
if (!room) {
  setStatus('error', t('watch.status.noRoom'))
} else {
  new Watch(room).start()
}
