// Room screen: the video grid, participant list, controls and connection state of one meeting.
// The view is rebuilt from the SDK's participant objects on every event (syncParticipant), so it
// cannot drift from what the SDK knows, whatever order events arrive in.
import {
  Room, RoomEvent, EngineEvent, Track, ConnectionState, ConnectionQuality, DisconnectReason
} from '../vendor/livekit-client.esm.mjs'
import { h } from './dom.js'
import { icons } from './icons.js'
import { qualityPresets } from './media.js'
import { signalUrl } from './config.js'
import { roles } from './invitation.js'
import { CouncilPanel } from './council-panel.js'
import { CaptionBand, CaptionFeed, followCaptions, transcriptionTopic } from './captions.js'
import { captionerDesk } from './captioner.js'

// requestNotAllowed is livekit.RequestResponse.Reason.NOT_ALLOWED (the SDK does not export the
// enum): the server's answer to an unmute that the floor rule refuses.
const requestNotAllowed = 2

// enterRoom connects to the meeting, publishes what the lobby prepared and returns the room view.
// It throws if the connection fails, leaving the lobby to show why.
export async function enterRoom (ctx, session, choices) {
  const preset = qualityPresets[choices.quality] || qualityPresets.standard
  const room = new Room({
    // Hemicycle speaks the two-peer-connection protocol at /rtc; saying so saves the SDK a
    // failed attempt at the single-connection path.
    singlePeerConnection: false,
    // Videos out of sight are paused, the others sent at the size shown: nothing is sent that
    // nobody sees.
    adaptiveStream: true,
    // The layers that no subscriber receives are not encoded (the server says which).
    dynacast: true,
    audioCaptureDefaults: { deviceId: choices.devices.audioinput || undefined },
    videoCaptureDefaults: { deviceId: choices.devices.videoinput || undefined, resolution: preset.resolution },
    audioOutput: choices.devices.audiooutput ? { deviceId: choices.devices.audiooutput } : undefined,
    publishDefaults: { simulcast: true }
  })
  const view = new RoomView(ctx, session, room)
  try {
    await room.connect(signalUrl(), session.token, { autoSubscribe: true })
  } catch (err) {
    view.dispose()
    await room.disconnect().catch(() => {})
    throw err
  }
  ctx.show(view.root, view)
  view.syncAll()
  view.watchRefusals()
  // The deliberation panel loads beside the media; neither waits for the other.
  if (view.council) view.council.start()
  await view.publishInitial(choices)
  return view
}

class RoomView {
  constructor (ctx, session, room) {
    this.ctx = ctx
    this.t = ctx.t
    this.session = session
    this.room = room
    this.leaving = false
    this.disposed = false
    this.selfMuting = false // true while our own click is muting the microphone
    this.tiles = new Map() // key identity/source → tile parts
    this.people = new Map() // identity → list item parts
    this.audioSinks = new Map() // track sid → <audio>
    this.watchedEngine = null
    this.captionFeed = new CaptionFeed()
    this.captionBand = new CaptionBand({ t: ctx.t, feed: this.captionFeed, nameOf: (id) => this.nameOf(id) })
    this.build()
    // Anyone with a council role follows the sitting; a plain LiveKit token has none.
    this.council = session.role ? new CouncilPanel(ctx, session, this) : null
    // The captioner's desk stands first in the side column, as the chair's console does.
    this.captioner = session.role === 'captioner' ? captionerDesk(this) : null
    if (this.captioner) this.side.prepend(this.captioner.root)
    followCaptions(room, this.captionFeed)
    this.listen()
  }

  build () {
    const t = this.t
    this.statePill = h('p', { class: 'conn-state', dataset: { state: 'connecting' }, text: t('room.state.connecting') })
    this.selfQuality = h('p', { class: 'self-quality' })
    this.reconnectBanner = h('div', { class: 'banner reconnecting', role: 'alert', hidden: true })
    this.errorBanner = h('div', { class: 'banner error', role: 'alert', hidden: true })
    this.audioBanner = h('div', { class: 'banner audio-blocked', hidden: true },
      h('p', { text: t('room.audioBlocked') }),
      h('button', { type: 'button', class: 'button primary', text: t('room.enableAudio'), onclick: () => this.room.startAudio().catch(() => {}) }))
    this.grid = h('ul', { class: 'grid', 'aria-labelledby': 'videos-title' })
    this.peopleTitle = h('h2', { id: 'people-title' })
    this.peopleList = h('ul', { class: 'people', 'aria-labelledby': 'people-title' })
    this.audioBox = h('div', { class: 'audio-sinks' })
    // Reserved for the chair's, clerk's and members' deliberation panels (issue 4).
    this.councilPanel = h('section', { id: 'council-panel', class: 'council-panel', 'aria-labelledby': 'council-title', hidden: true },
      h('h2', { id: 'council-title', text: t('room.panel') }))

    // The captions' display settings, folded: most people set them once.
    const captionsPanel = h('section', { class: 'captions-panel', 'aria-labelledby': 'captions-title' },
      h('details', {},
        h('summary', {}, h('h2', { id: 'captions-title', text: t('captions.title') })),
        this.captionBand.settings))
    this.side = h('aside', { class: 'side' }, ...this.sideOrder(
      h('section', { class: 'people-panel', 'aria-labelledby': 'people-title' }, this.peopleTitle, this.peopleList),
      this.councilPanel), captionsPanel)

    this.buttons = {
      mic: this.toggleButton('mic', icons.mic(), t('room.mic.label'), () => this.toggleMic()),
      camera: this.toggleButton('camera', icons.camera(), t('room.camera.label'), () => this.toggleCamera()),
      screen: this.toggleButton('screen', icons.screen(), t('room.screen.label'), () => this.toggleScreen())
    }
    if (!navigator.mediaDevices?.getDisplayMedia) this.buttons.screen.hidden = true
    this.noPublishNote = h('p', { class: 'no-publish', text: t('room.noPublish'), hidden: true })
    // Says why the microphone stays closed while the chair regulates the floor.
    this.floorNote = h('p', { class: 'floor-note', id: 'floor-note', text: t('room.floorNote'), hidden: true })
    this.buttons.mic.setAttribute('aria-describedby', 'floor-note')
    const leave = h('button', { type: 'button', class: 'button danger control', dataset: { control: 'leave' }, onclick: () => this.leave() },
      icons.leave(), h('span', { text: t('room.leave') }))

    this.root = h('div', { class: 'room', dataset: { role: this.session.role || 'unknown' } },
      h('header', { class: 'room-bar' },
        h('h1', { id: 'room-title', text: t('room.title', { room: this.session.room }) }),
        this.statePill, this.selfQuality),
      this.reconnectBanner, this.errorBanner, this.audioBanner,
      h('div', { class: 'room-body' },
        // Focusable so that a keyboard can scroll it when the tiles overflow (the chair's and
        // the clerk's wider panel leaves it less room); videos themselves take no focus.
        h('section', { class: 'stage', 'aria-labelledby': 'videos-title', tabindex: '0' },
          h('h2', { id: 'videos-title', class: 'visually-hidden', text: t('room.videos') }),
          this.grid, this.captionBand.lines),
        this.side),
      h('div', { class: 'controls', role: 'group', 'aria-label': t('room.controls') },
        this.noPublishNote, this.floorNote, this.buttons.mic, this.buttons.camera, this.buttons.screen, leave),
      this.audioBox)
  }

  // sideOrder puts the chair's and the clerk's panel before the list of participants: it is what
  // they work from (in the reading and Tab order, not only on screen).
  sideOrder (people, council) {
    return ['chair', 'clerk'].includes(this.session.role) ? [council, people] : [people, council]
  }

  // toggleButton ignores clicks while its previous action is still running, so that a double
  // click cannot send "on" and "off" in an unknown order.
  toggleButton (name, icon, label, action) {
    let running = false
    const onclick = async () => {
      if (running) return
      running = true
      try {
        await action()
      } finally {
        running = false
      }
    }
    return h('button', { type: 'button', class: 'button control', 'aria-pressed': 'false', dataset: { control: name }, onclick },
      icon, h('span', { text: label }))
  }

  listen () {
    const r = this.room
    const sync = (_pubOrTrack, pubOrParticipant, participant) => this.syncParticipant(participant || pubOrParticipant)
    r.on(RoomEvent.ParticipantConnected, (p) => {
      this.syncParticipant(p)
      this.ctx.announce(this.t('announce.joined', { name: displayName(p) }))
    })
      .on(RoomEvent.ParticipantDisconnected, (p) => {
        this.removeParticipant(p)
        this.ctx.announce(this.t('announce.left', { name: displayName(p) }))
      })
      .on(RoomEvent.TrackPublished, (pub, p) => {
        this.syncParticipant(p)
        if (pub.source === Track.Source.ScreenShare) this.ctx.announce(this.t('announce.screenStarted', { name: displayName(p) }))
      })
      .on(RoomEvent.TrackUnpublished, (pub, p) => {
        this.syncParticipant(p)
        if (pub.source === Track.Source.ScreenShare) this.ctx.announce(this.t('announce.screenStopped', { name: displayName(p) }))
      })
      .on(RoomEvent.TrackSubscribed, (track, pub, p) => {
        if (track.kind === Track.Kind.Audio) this.attachAudio(track, pub, p)
        this.syncParticipant(p)
      })
      .on(RoomEvent.TrackUnsubscribed, (track, pub, p) => {
        if (track.kind === Track.Kind.Audio) this.detachAudio(track, pub)
        else track.detach()
        this.syncParticipant(p)
      })
      .on(RoomEvent.TrackMuted, (pub, p) => {
        this.syncParticipant(p)
        if (p === r.localParticipant && pub.source === Track.Source.Microphone && !this.selfMuting) {
          // Someone else (the chair, through the server) muted us: say so, it is not obvious,
          // and say why when it is the floor rule.
          this.ctx.announce(this.t(this.council?.floorBlocksMe() ? 'announce.mutedByFloor' : 'announce.youWereMuted'))
        }
      })
      .on(RoomEvent.TrackUnmuted, sync)
      // The server paused a video our link cannot carry, or resumed it.
      .on(RoomEvent.TrackStreamStateChanged, (_pub, _state, p) => this.syncParticipant(p))
      .on(RoomEvent.LocalTrackPublished, (pub, p) => this.syncParticipant(p))
      .on(RoomEvent.LocalTrackUnpublished, (pub, p) => this.syncParticipant(p))
      .on(RoomEvent.ParticipantAttributesChanged, (_changed, p) => this.syncParticipant(p))
      .on(RoomEvent.ParticipantMetadataChanged, (_old, p) => this.syncParticipant(p))
      .on(RoomEvent.ParticipantNameChanged, (_name, p) => this.syncParticipant(p))
      .on(RoomEvent.ParticipantPermissionsChanged, (_old, p) => this.syncParticipant(p))
      .on(RoomEvent.ActiveSpeakersChanged, (speakers) => this.showSpeakers(speakers))
      .on(RoomEvent.ConnectionQualityChanged, (_q, p) => this.syncParticipant(p))
      .on(RoomEvent.ConnectionStateChanged, (state) => this.showConnectionState(state))
      .on(RoomEvent.SignalReconnecting, () => this.showReconnecting(true))
      .on(RoomEvent.Reconnecting, () => this.showReconnecting(true))
      .on(RoomEvent.Reconnected, () => {
        this.showReconnecting(false)
        this.ctx.announce(this.t('announce.reconnected'))
        this.syncAll()
        this.watchRefusals()
        // State messages sent while we were away are lost; the current state is read again.
        this.council?.refresh()
      })
      .on(RoomEvent.SignalConnected, () => this.watchRefusals())
      .on(RoomEvent.DataReceived, (payload, _participant, _kind, topic) => this.council?.onData(payload, topic))
      .on(RoomEvent.AudioPlaybackStatusChanged, () => { this.audioBanner.hidden = this.room.canPlaybackAudio })
      .on(RoomEvent.MediaDevicesError, (err) => this.showError(this.t('room.deviceError', { reason: err.message })))
      .on(RoomEvent.Disconnected, (reason) => this.onDisconnected(reason))
    // The browser knows at once when the network is gone; the SDK only notices when a ping or a
    // connection times out, up to 15 s later. Tell the person now.
    this.onOffline = () => this.showReconnecting(true)
    this.onOnline = () => {
      // Back before the SDK noticed anything: the session went on, say so.
      if (r.state !== ConnectionState.Connected || this.reconnectBanner.hidden) return
      this.showConnectionState(r.state)
      this.ctx.announce(this.t('announce.reconnected'))
    }
    window.addEventListener('offline', this.onOffline)
    window.addEventListener('online', this.onOnline)
  }

  syncAll () {
    this.showConnectionState(this.room.state)
    this.syncParticipant(this.room.localParticipant)
    for (const p of this.room.remoteParticipants.values()) this.syncParticipant(p)
  }

  isLocal (p) {
    return p === this.room.localParticipant
  }

  // roleOf reads the role and seat the server put in the participant's attributes (or metadata);
  // for ourselves the invitation's claims are the fallback.
  roleOf (p) {
    const attrs = p.attributes || {}
    let role = attrs['hemicycle.role']
    let seat = attrs['hemicycle.seat']
    if (!role && p.metadata) {
      try {
        const meta = JSON.parse(p.metadata)
        role = meta.role ?? meta.hemicycle?.role
        seat = meta.seat ?? meta.hemicycle?.seat
      } catch {
        // Metadata that is not ours (free text) carries no role.
      }
    }
    if (!role && this.isLocal(p)) {
      role = this.session.role
      seat = this.session.seat
    }
    const seatNumber = Number.parseInt(seat, 10)
    return { role: roles.includes(role) ? role : null, seat: seatNumber > 0 ? seatNumber : null }
  }

  // nameOf is the name shown for a participant's identity ('' for someone not in the room).
  nameOf (identity) {
    const lp = this.room.localParticipant
    const p = identity && identity === lp.identity ? lp : this.room.getParticipantByIdentity(identity)
    return p ? displayName(p) : ''
  }

  roleText (p) {
    const { role, seat } = this.roleOf(p)
    const parts = [this.t(`role.${role || 'unknown'}`)]
    if (seat) parts.push(this.t('seat', { seat }))
    return parts.join(' · ')
  }

  syncParticipant (p) {
    if (this.disposed || !p) return
    const local = this.isLocal(p)
    if (!local && !this.room.remoteParticipants.has(p.identity)) return // already gone
    const name = local ? this.t('room.you', { name: displayName(p) }) : displayName(p)
    const { role } = this.roleOf(p)
    const mic = p.getTrackPublication(Track.Source.Microphone)
    const cam = p.getTrackPublication(Track.Source.Camera)
    const screen = p.getTrackPublication(Track.Source.ScreenShare)
    const micOn = Boolean(mic && !mic.isMuted)
    const camOn = Boolean(cam && !cam.isMuted)
    const quality = p.connectionQuality || ConnectionQuality.Unknown

    // The public watch without a camera tile; everyone else has one, camera on or not.
    if (role !== 'viewer' || camOn) {
      const tile = this.ensureTile(p, 'camera')
      tile.name.textContent = name
      tile.role.textContent = this.roleText(p)
      tile.avatar.textContent = initials(displayName(p))
      this.setMedia(tile, camOn ? cam.track : null)
      setState(tile.root, { mic: micOn ? 'on' : 'off', camera: camOn ? 'on' : 'off', quality, stream: streamState(camOn && cam) })
      tile.micText.textContent = this.t(micOn ? 'room.micOn' : 'room.micMuted')
      tile.qualityText.textContent = this.t('room.quality', { quality: this.t(`quality.${quality}`) })
    } else {
      this.removeTile(p.identity, 'camera')
    }

    if (screen) {
      const tile = this.ensureTile(p, 'screen')
      tile.name.textContent = this.t('room.screenOf', { name: displayName(p) })
      tile.role.textContent = ''
      tile.avatar.textContent = initials(displayName(p))
      this.setMedia(tile, screen.isMuted ? null : screen.track)
      setState(tile.root, { camera: screen.track && !screen.isMuted ? 'on' : 'off', stream: streamState(!screen.isMuted && screen) })
    } else {
      this.removeTile(p.identity, 'screen')
    }

    const person = this.ensurePerson(p)
    person.name.textContent = name
    person.role.textContent = this.roleText(p)
    setState(person.root, { mic: micOn ? 'on' : 'off', camera: camOn ? 'on' : 'off', quality })
    person.micText.textContent = this.t(micOn ? 'room.micOn' : 'room.micMuted')
    person.camText.textContent = this.t(camOn ? 'room.cameraOn' : 'room.cameraOff')
    person.qualityText.textContent = this.t('room.quality', { quality: this.t(`quality.${quality}`) })

    if (local) this.syncControls()
    else {
      this.council?.participantsChanged()
      this.captioner?.participantsChanged()
    }
    this.peopleTitle.textContent = this.t('room.participants', { count: this.people.size })
  }

  ensureTile (p, source) {
    const key = `${p.identity}\u0000${source}`
    let tile = this.tiles.get(key)
    if (tile) return tile
    const local = this.isLocal(p)
    const video = h('video', {
      class: local && source === 'camera' ? 'mirrored' : '',
      autoplay: true,
      playsInline: true,
      muted: true, // sound plays through the separate <audio> sinks
      'aria-hidden': 'true'
    })
    tile = {
      // A tile made after the speakers were announced starts from what the SDK knows.
      root: h('li', { class: `tile tile-${source}`, dataset: { identity: p.identity, source, local: String(local), speaking: String(source === 'camera' && p.isSpeaking), video: 'none' } }),
      video,
      avatar: h('span', { class: 'avatar', 'aria-hidden': 'true' }),
      name: h('span', { class: 'tile-name' }),
      role: h('span', { class: 'tile-role' }),
      micText: h('span', { class: 'visually-hidden' }),
      qualityText: h('span', { class: 'visually-hidden' }),
      track: null
    }
    const speaking = h('span', { class: 'badge speaking-badge', text: this.t('room.speaking') })
    // Shown while the server holds this video back because our link cannot carry it: a
    // frozen picture would look like a frozen colleague.
    const paused = h('p', { class: 'tile-notice', role: 'status', text: this.t('room.videoPaused') })
    tile.root.append(
      h('div', { class: 'tile-media' }, video, tile.avatar, paused),
      h('div', { class: 'tile-caption' },
        h('span', { class: 'tile-who' }, tile.name, tile.role),
        source === 'camera'
          ? h('span', { class: 'tile-state' },
            speaking,
            h('span', { class: 'state mic-state' }, icons.mic(), tile.micText),
            h('span', { class: 'state quality-state' }, icons.quality(), tile.qualityText))
          : null))
    if (source === 'screen') this.grid.prepend(tile.root)
    else this.grid.append(tile.root)
    this.tiles.set(key, tile)
    return tile
  }

  removeTile (identity, source) {
    const key = `${identity}\u0000${source}`
    const tile = this.tiles.get(key)
    if (!tile) return
    this.setMedia(tile, null)
    tile.root.remove()
    this.tiles.delete(key)
  }

  // setMedia shows a video track in a tile, or the participant's initials when there is none.
  setMedia (tile, track) {
    if (tile.track === track) return
    if (tile.track) tile.track.detach(tile.video)
    tile.track = track || null
    // data-video says whether there is a picture to show, which differs from data-camera
    // ("their camera is on") while a track is not, or may not be, received.
    tile.root.dataset.video = track ? 'shown' : 'none'
    if (track) {
      track.attach(tile.video)
      tile.video.dataset.trackSid = track.sid || ''
    } else {
      delete tile.video.dataset.trackSid
    }
  }

  ensurePerson (p) {
    let person = this.people.get(p.identity)
    if (person) return person
    person = {
      root: h('li', { class: 'person', dataset: { identity: p.identity, local: String(this.isLocal(p)), speaking: String(p.isSpeaking) } }),
      name: h('span', { class: 'person-name' }),
      role: h('span', { class: 'person-role' }),
      micText: h('span', { class: 'visually-hidden' }),
      camText: h('span', { class: 'visually-hidden' }),
      qualityText: h('span', { class: 'visually-hidden' })
    }
    person.root.append(
      h('span', { class: 'person-who' }, person.name, person.role),
      h('span', { class: 'person-state' },
        h('span', { class: 'state mic-state' }, icons.mic(), person.micText),
        h('span', { class: 'state camera-state' }, icons.camera(), person.camText),
        h('span', { class: 'state quality-state' }, icons.quality(), person.qualityText)))
    if (this.isLocal(p)) this.peopleList.prepend(person.root)
    else this.peopleList.append(person.root)
    this.people.set(p.identity, person)
    return person
  }

  removeParticipant (p) {
    this.removeTile(p.identity, 'camera')
    this.removeTile(p.identity, 'screen')
    this.people.get(p.identity)?.root.remove()
    this.people.delete(p.identity)
    this.council?.participantsChanged()
    this.captioner?.participantsChanged()
    for (const pub of p.trackPublications.values()) {
      if (pub.track?.kind === Track.Kind.Audio) this.detachAudio(pub.track, pub)
    }
    this.peopleTitle.textContent = this.t('room.participants', { count: this.people.size })
  }

  attachAudio (track, pub, p) {
    if (this.audioSinks.has(pub.trackSid)) return
    const el = track.attach()
    el.dataset.identity = p.identity
    el.dataset.trackSid = pub.trackSid
    this.audioBox.append(el)
    this.audioSinks.set(pub.trackSid, el)
  }

  detachAudio (track, pub) {
    const el = this.audioSinks.get(pub.trackSid)
    if (!el) return
    track.detach(el)
    el.remove()
    this.audioSinks.delete(pub.trackSid)
  }

  showSpeakers (speakers) {
    const speaking = new Set(speakers.map((p) => p.identity))
    for (const tile of this.tiles.values()) {
      if (tile.root.dataset.source !== 'camera') continue
      tile.root.dataset.speaking = String(speaking.has(tile.root.dataset.identity))
    }
    for (const person of this.people.values()) {
      person.root.dataset.speaking = String(speaking.has(person.root.dataset.identity))
    }
  }

  syncControls () {
    const lp = this.room.localParticipant
    // The invitation (a public viewer's, say) and the server's live permissions must both allow it.
    const canPublish = this.session.canPublish && lp.permissions?.canPublish !== false
    for (const [name, button] of Object.entries(this.buttons)) {
      if (name === 'screen' && !navigator.mediaDevices?.getDisplayMedia) continue
      button.hidden = !canPublish
    }
    this.noPublishNote.hidden = canPublish
    this.buttons.mic.setAttribute('aria-pressed', String(lp.isMicrophoneEnabled))
    this.buttons.camera.setAttribute('aria-pressed', String(lp.isCameraEnabled))
    this.buttons.screen.setAttribute('aria-pressed', String(lp.isScreenShareEnabled))
    const quality = lp.connectionQuality || ConnectionQuality.Unknown
    this.selfQuality.dataset.quality = quality
    this.selfQuality.textContent = this.t('room.quality', { quality: this.t(`quality.${quality}`) })
    this.floorNote.hidden = !(canPublish && this.council?.floorBlocksMe())
    this.council?.localMediaChanged()
  }

  // councilChanged is called by the council panel after each state.
  councilChanged () {
    if (!this.disposed) this.syncControls()
  }

  micEnabled () {
    return this.room.localParticipant.isMicrophoneEnabled
  }

  async setMic (enable) {
    if (this.micEnabled() !== enable) await this.toggleMic()
  }

  // openMics lists the others whose microphone is open, for the chair's console.
  openMics () {
    const out = []
    for (const p of this.room.remoteParticipants.values()) {
      const mic = p.getTrackPublication(Track.Source.Microphone)
      if (mic && !mic.isMuted) out.push({ identity: p.identity, name: displayName(p), detail: this.roleText(p) })
    }
    return out
  }

  // watchRefusals listens for the server's refusals that the SDK does not raise as errors: an
  // unmute refused by the floor rule comes back as a RequestResponse NOT_ALLOWED with the
  // reason, which the SDK only hands to its engine's listeners. The engine is replaced on a full
  // reconnection, hence the check.
  watchRefusals () {
    const engine = this.room.engine
    if (!engine || engine === this.watchedEngine) return
    this.watchedEngine = engine
    engine.on(EngineEvent.SignalRequestResponse, (res) => {
      if (this.disposed || res.reason !== requestNotAllowed || !res.message) return
      const text = this.t(this.council?.floorBlocksMe() ? 'room.micRefusedFloor' : 'room.refused', { reason: res.message })
      this.showError(text)
      this.syncParticipant(this.room.localParticipant)
    })
  }

  showConnectionState (state) {
    const key = {
      [ConnectionState.Connected]: 'connected',
      [ConnectionState.Connecting]: 'connecting',
      [ConnectionState.Reconnecting]: 'reconnecting',
      [ConnectionState.SignalReconnecting]: 'reconnecting',
      [ConnectionState.Disconnected]: 'disconnected'
    }[state] || 'connecting'
    this.statePill.dataset.state = key
    this.statePill.textContent = this.t(`room.state.${key}`)
    this.root.dataset.connection = key
    if (key === 'connected') this.showReconnecting(false)
  }

  showReconnecting (on) {
    if (on === !this.reconnectBanner.hidden) return
    this.reconnectBanner.hidden = !on
    // An alert is announced when its text appears, so the text is only set while it is shown.
    this.reconnectBanner.textContent = on ? this.t('room.reconnecting') : ''
    if (on) {
      this.statePill.dataset.state = 'reconnecting'
      this.statePill.textContent = this.t('room.state.reconnecting')
      this.root.dataset.connection = 'reconnecting'
    }
  }

  showError (message) {
    this.errorBanner.textContent = message
    this.errorBanner.hidden = !message
  }

  async publishInitial (choices) {
    const lp = this.room.localParticipant
    try {
      if (choices.audioTrack) await lp.publishTrack(choices.audioTrack, { source: Track.Source.Microphone })
      if (choices.videoTrack) await lp.publishTrack(choices.videoTrack, { source: Track.Source.Camera })
    } catch (err) {
      this.showError(this.t('room.deviceError', { reason: err.message }))
    }
    this.syncParticipant(lp)
  }

  async toggleMic () {
    const enable = !this.room.localParticipant.isMicrophoneEnabled
    this.selfMuting = !enable
    try {
      await this.switchDevice((lp) => lp.setMicrophoneEnabled(enable), enable ? 'announce.micOn' : 'announce.micOff')
    } finally {
      this.selfMuting = false
    }
  }

  toggleCamera () {
    const enable = !this.room.localParticipant.isCameraEnabled
    return this.switchDevice((lp) => lp.setCameraEnabled(enable), enable ? 'announce.cameraOn' : 'announce.cameraOff')
  }

  // switchDevice turns our microphone or camera on or off and says so, or shows why it could not.
  async switchDevice (set, announcement) {
    const lp = this.room.localParticipant
    this.showError('')
    try {
      await set(lp)
      this.ctx.announce(this.t(announcement))
    } catch (err) {
      this.showError(this.t('room.deviceError', { reason: err.message }))
    } finally {
      this.syncParticipant(lp)
    }
  }

  async toggleScreen () {
    const lp = this.room.localParticipant
    this.showError('')
    try {
      await lp.setScreenShareEnabled(!lp.isScreenShareEnabled, { audio: false })
    } catch (err) {
      // Closing the browser's picker is a choice, not an error worth a banner.
      if (err?.name !== 'NotAllowedError') this.showError(this.t('room.screenError', { reason: err.message }))
    } finally {
      this.syncParticipant(lp)
    }
  }

  async leave () {
    this.leaving = true
    await this.room.disconnect()
    // disconnect() emits Disconnected, which shows the next screen; this covers a room that was
    // already closed and so emits nothing.
    this.onDisconnected(DisconnectReason.CLIENT_INITIATED)
  }

  onDisconnected (reason) {
    if (this.disposed) return
    this.dispose()
    const byUs = this.leaving || reason === DisconnectReason.CLIENT_INITIATED
    this.ctx.showLeft(this.session, byUs ? null : disconnectReasonText(this.t, reason))
  }

  // close is called when another screen replaces this one without going through Leave.
  close () {
    if (this.disposed) return
    this.leaving = true
    this.dispose()
    this.room.disconnect().catch(() => {})
  }

  dispose () {
    if (this.disposed) return
    this.disposed = true
    this.council?.dispose()
    this.captioner?.dispose()
    this.captionBand.dispose()
    this.room.unregisterTextStreamHandler(transcriptionTopic)
    this.room.removeAllListeners()
    window.removeEventListener('offline', this.onOffline)
    window.removeEventListener('online', this.onOnline)
    for (const tile of this.tiles.values()) this.setMedia(tile, null)
    for (const el of this.audioSinks.values()) el.remove()
    this.audioSinks.clear()
  }
}

// streamState is 'paused' when the server holds a received video back for lack of bandwidth
// (the SDK's StreamState), else 'active'; pub is the video's publication, or nothing.
function streamState (pub) {
  return pub && pub.track?.streamState === Track.StreamState.Paused ? 'paused' : 'active'
}

function setState (el, state) {
  for (const [k, v] of Object.entries(state)) el.dataset[k] = v
}

function displayName (p) {
  return p.name || p.identity
}

function initials (name) {
  const words = String(name).trim().split(/\s+/).filter(Boolean)
  return (words.length > 1 ? words[0][0] + words[words.length - 1][0] : (words[0] || '?').slice(0, 2)).toUpperCase()
}

function disconnectReasonText (t, reason) {
  switch (reason) {
    case DisconnectReason.PARTICIPANT_REMOVED: return t('reason.removed')
    case DisconnectReason.DUPLICATE_IDENTITY: return t('reason.duplicate')
    case DisconnectReason.ROOM_DELETED:
    case DisconnectReason.ROOM_CLOSED: return t('reason.roomClosed')
    case DisconnectReason.SERVER_SHUTDOWN: return t('reason.server')
    case DisconnectReason.SIGNAL_CLOSE:
    case DisconnectReason.CONNECTION_TIMEOUT:
    case DisconnectReason.JOIN_FAILURE:
    case DisconnectReason.MEDIA_FAILURE: return t('reason.network')
    default: return t('reason.unknown')
  }
}
