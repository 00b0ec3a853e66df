// The public watch page, /watch/{room} (or /watch.html?room=…): no login. It asks the server for
// a viewer token (rate-limited, short-lived, random identity), joins as a hidden viewer that
// receives only the delayed programme, and shows the session's state as it reaches the
// programme (delayed too, so that the item shown is the one being debated on screen).
import { Room, RoomEvent, Track } from '/vendor/livekit-client.esm.mjs'

const texts = {
  fr: {
    title: (room) => `Séance publique — ${room}`,
    connecting: 'Connexion…',
    live: 'En direct',
    reconnecting: 'Reconnexion…',
    waiting: 'Aucune séance publique en ce moment. Nouvel essai dans quelques secondes…',
    busy: 'Trop de demandes : nouvel essai dans quelques secondes…',
    full: 'La page est complète.',
    hls: 'Suivez la séance sur le flux HLS : ',
    delay: (s) => `Diffusion en différé de ${s} secondes.`,
    play: 'Activer le son',
    noItem: 'Pas de point en discussion',
    item: (title) => `Point en discussion : ${title}`,
    vote: (q) => `Vote en cours${q ? ' : ' + q : ''}`,
    result: (r) => `Résultat du dernier vote : ${r.adopted ? 'adopté' : 'rejeté'} (${r.for} pour, ${r.against} contre, ${r.abstain} abstentions)`,
    noRoom: 'Adresse incomplète : il manque le nom de la salle (/watch/nom-de-la-salle).'
  },
  en: {
    title: (room) => `Public sitting — ${room}`,
    connecting: 'Connecting…',
    live: 'Live',
    reconnecting: 'Reconnecting…',
    waiting: 'No public sitting right now. Trying again in a few seconds…',
    busy: 'Too many requests: trying again in a few seconds…',
    full: 'This page is full.',
    hls: 'Follow the sitting on the HLS stream: ',
    delay: (s) => `Broadcast with a ${s} second delay.`,
    play: 'Turn the sound on',
    noItem: 'No item under discussion',
    item: (title) => `Item under discussion: ${title}`,
    vote: (q) => `Vote in progress${q ? ': ' + q : ''}`,
    result: (r) => `Last vote: ${r.adopted ? 'adopted' : 'rejected'} (${r.for} for, ${r.against} against, ${r.abstain} abstentions)`,
    noRoom: 'Incomplete address: the room name is missing (/watch/room-name).'
  }
}
const lang = (navigator.languages || [navigator.language]).some((l) => String(l).toLowerCase().startsWith('fr')) ? 'fr' : 'en'
const t = texts[lang]
document.documentElement.lang = lang

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
      note.replaceChildren(document.createTextNode(t.hls), Object.assign(document.createElement('a'), { href: hls, textContent: hls }))
      note.hidden = false
      setStatus('full', t.full)
    } else if (res && res.status === 429) {
      setStatus('waiting', t.busy)
    } else {
      setStatus('waiting', t.waiting)
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
  }

  async start () {
    document.title = t.title(this.roomName)
    $('watch-title').textContent = t.title(this.roomName)
    $('play').textContent = t.play
    $('play').addEventListener('click', () => this.room?.startAudio().catch(() => {}))
    for (;;) {
      setStatus('connecting', t.connecting)
      const grant = await viewerToken(this.roomName)
      $('delay-note').textContent = t.delay(Math.round(grant.delaySeconds))
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
      .on(RoomEvent.Reconnecting, () => setStatus('reconnecting', t.reconnecting))
      .on(RoomEvent.Reconnected, () => setStatus('live', t.live))
      .on(RoomEvent.DataReceived, (payload, _p, _kind, topic) => this.caption(payload, topic))
      .on(RoomEvent.Disconnected, () => ended())
    try {
      await room.connect(signalUrl(), grant.token, { autoSubscribe: true })
    } catch {
      ended()
      return done
    }
    setStatus('live', t.live)
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
    const items = view.items || []
    const open = items.find((i) => i.id === view.openItem)
    $('current-item').textContent = open ? t.item(open.title) : t.noItem
    const voteEl = $('current-vote')
    const votes = view.votes || []
    const openVote = votes.find((v) => v.id === view.openVote)
    const closed = votes.filter((v) => v.result)
    if (openVote) {
      voteEl.textContent = t.vote(openVote.question)
      voteEl.hidden = false
    } else if (closed.length > 0) {
      voteEl.textContent = t.result(closed[closed.length - 1].result)
      voteEl.hidden = false
    } else {
      voteEl.hidden = true
    }
  }

  // caption shows text sent on the captions topic by a captioner.
  caption (payload, topic) {
    if (topic !== 'hemicycle.captions') return
    const text = new TextDecoder().decode(payload).trim()
    if (!text) return
    const box = $('captions')
    box.append(Object.assign(document.createElement('p'), { textContent: text }))
    while (box.childElementCount > 6) box.firstElementChild.remove()
  }
}

const room = roomName()
if (!room) {
  setStatus('error', t.noRoom)
} else {
  new Watch(room).start()
}
