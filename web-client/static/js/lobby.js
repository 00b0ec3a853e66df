// Lobby: camera preview, microphone level, device choice and the privacy notice to acknowledge
// before entering. The tracks captured here are handed to the room, so the devices are opened once.
import { Room, createLocalAudioTrack, createLocalVideoTrack, createLocalTracks, Track } from '../vendor/livekit-client.esm.mjs'
import { h, uniqueId } from './dom.js'
import { qualityPresets } from './media.js'

export function renderLobby (ctx, session) {
  const { t } = ctx
  const roleText = t(`role.${session.role || 'unknown'}`)
  const state = {
    audio: null, // LocalAudioTrack while the microphone is open
    video: null, // LocalVideoTrack while the camera is open
    quality: 'standard',
    devices: { audioinput: '', videoinput: '', audiooutput: '' },
    meterStop: null,
    pending: Promise.resolve(), // the queue of device operations (see enqueue)
    handedOver: false,
    closed: false
  }

  const status = h('p', { class: 'form-status', role: 'alert' })
  const mediaStatus = h('p', { class: 'media-status', role: 'status' })

  // Preview and level meter.
  const preview = h('video', { class: 'preview mirrored', muted: true, autoplay: true, playsInline: true, 'aria-label': t('lobby.preview') })
  const previewOff = h('p', { class: 'preview-off', text: t('lobby.previewOff') })
  const meterId = uniqueId('meter')
  const meter = h('meter', { id: meterId, class: 'mic-meter', min: 0, max: 1, low: 0.1, high: 0.8, optimum: 0.5, value: 0 })

  // Devices and options.
  const selects = {
    videoinput: h('select', { id: uniqueId('cam'), name: 'camera' }),
    audioinput: h('select', { id: uniqueId('mic'), name: 'microphone' }),
    audiooutput: h('select', { id: uniqueId('spk'), name: 'speaker' })
  }
  const canChooseOutput = 'setSinkId' in HTMLMediaElement.prototype
  const qualitySelect = h('select', { id: uniqueId('quality'), name: 'quality' },
    h('option', { value: 'low', text: t('lobby.quality.low') }),
    h('option', { value: 'standard', text: t('lobby.quality.standard'), selected: true }))
  const micCheck = h('input', { type: 'checkbox', id: uniqueId('startmic'), checked: true })
  const camCheck = h('input', { type: 'checkbox', id: uniqueId('startcam'), checked: true })
  const ack = h('input', { type: 'checkbox', id: uniqueId('ack'), required: true })
  const joinButton = h('button', { type: 'submit', class: 'button primary', text: t('lobby.join') })
  const backButton = h('button', { type: 'button', class: 'button', text: t('lobby.back') })

  const labelled = (text, control) => h('div', { class: 'field' }, h('label', { for: control.id, text }), control)
  const checkbox = (text, control) => h('div', { class: 'check' }, control, h('label', { for: control.id, text }))

  const mediaSection = session.canPublish
    ? h('section', { class: 'lobby-media', 'aria-labelledby': 'lobby-devices' },
      h('div', { class: 'preview-box' }, preview, previewOff),
      h('div', { class: 'field' }, h('label', { for: meterId, text: t('lobby.micLevel') }), meter),
      mediaStatus,
      h('h2', { id: 'lobby-devices', text: t('lobby.devices') }),
      labelled(t('lobby.camera'), selects.videoinput),
      labelled(t('lobby.microphone'), selects.audioinput),
      canChooseOutput ? labelled(t('lobby.speaker'), selects.audiooutput) : null,
      labelled(t('lobby.quality'), qualitySelect),
      checkbox(t('lobby.startCamera'), camCheck),
      checkbox(t('lobby.startMic'), micCheck))
    : h('section', { class: 'lobby-media' },
      h('p', { text: t('lobby.viewerNote') }),
      canChooseOutput ? labelled(t('lobby.speaker'), selects.audiooutput) : null)

  const form = h('form', { class: 'lobby-form', novalidate: true },
    privacyNotice(ctx),
    checkbox(t('privacy.ack'), ack),
    status,
    h('div', { class: 'actions' }, joinButton, backButton))

  const root = h('section', { class: 'card lobby', 'aria-labelledby': 'lobby-title' },
    h('h1', { id: 'lobby-title', text: t('lobby.title') }),
    h('p', { class: 'joining-as', text: t('lobby.joiningAs', { room: session.room, name: session.name, role: roleText }) }),
    h('div', { class: 'lobby-columns' }, mediaSection, form))

  function showPreview () {
    const on = Boolean(state.video)
    preview.hidden = !on
    previewOff.hidden = on
    if (on) state.video.attach(preview)
  }

  function startMeter () {
    stopMeter()
    if (!state.audio) return
    state.meterStop = runLevelMeter(state.audio.mediaStreamTrack, (level) => { meter.value = level })
  }
  function stopMeter () {
    if (state.meterStop) state.meterStop()
    state.meterStop = null
    meter.value = 0
  }

  function mediaError (err) {
    const reason = err && (err.name === 'NotAllowedError' || err.name === 'SecurityError')
      ? t('lobby.mediaDenied')
      : err && (err.name === 'NotFoundError' || err.name === 'OverconstrainedError') ? t('lobby.mediaMissing') : (err?.message || String(err))
    mediaStatus.textContent = t('lobby.mediaError', { reason })
  }

  async function openCamera () {
    const track = await createLocalVideoTrack({
      deviceId: state.devices.videoinput || undefined,
      resolution: qualityPresets[state.quality].resolution
    })
    if (state.closed) return track.stop()
    state.video = track
  }
  async function openMicrophone () {
    const track = await createLocalAudioTrack({ deviceId: state.devices.audioinput || undefined })
    if (state.closed) return track.stop()
    state.audio = track
  }

  // One getUserMedia for both devices, so the browser asks for permission once; if that fails
  // (a device missing or refused) each is tried alone, so the other can still be used.
  async function openBoth () {
    try {
      const tracks = await createLocalTracks({
        audio: true,
        video: { resolution: qualityPresets[state.quality].resolution }
      })
      if (state.closed) return tracks.forEach((tr) => tr.stop())
      for (const tr of tracks) {
        if (tr.kind === Track.Kind.Audio) state.audio = tr
        else state.video = tr
      }
    } catch {
      await openCamera().catch((err) => { camCheck.checked = false; mediaError(err) })
      await openMicrophone().catch((err) => { micCheck.checked = false; mediaError(err) })
    }
  }

  async function fillDevices () {
    for (const kind of Object.keys(selects)) {
      if (kind === 'audiooutput' && !canChooseOutput) continue
      let devices = []
      try {
        devices = await Room.getLocalDevices(kind, false)
      } catch {
        // Device enumeration can fail without permission; the default device still works.
      }
      const select = selects[kind]
      const current = kind === 'videoinput'
        ? state.video?.mediaStreamTrack.getSettings().deviceId
        : kind === 'audioinput' ? state.audio?.mediaStreamTrack.getSettings().deviceId : state.devices.audiooutput
      select.replaceChildren(...(devices.length
        ? devices.map((d, i) => h('option', { value: d.deviceId, text: d.label || `${t(kind === 'videoinput' ? 'lobby.camera' : kind === 'audioinput' ? 'lobby.microphone' : 'lobby.speaker')} ${i + 1}`, selected: d.deviceId === current }))
        : [h('option', { value: '', text: kind === 'audiooutput' ? t('lobby.defaultDevice') : t('lobby.noDevice') })]))
      if (current) state.devices[kind] = current
    }
  }

  // Every device operation goes through one queue, in click order: two quick toggles of a box
  // can then never leave a camera open behind an unticked box, and Join waits for the queue.
  function enqueue (operation) {
    state.pending = state.pending.then(operation).catch(mediaError)
    return state.pending
  }

  // reconcile opens or releases each device to match its box.
  async function reconcile () {
    if (!session.canPublish) return
    if (camCheck.checked && !state.video) {
      await openCamera().catch((err) => { camCheck.checked = false; mediaError(err) })
    } else if (!camCheck.checked && state.video) {
      // Release the camera: its light going off is the visible promise that it is not in use.
      state.video.stop()
      state.video = null
    }
    if (micCheck.checked && !state.audio) {
      await openMicrophone().catch((err) => { micCheck.checked = false; mediaError(err) })
    } else if (!micCheck.checked && state.audio) {
      stopMeter()
      state.audio.stop()
      state.audio = null
    }
    showPreview()
    if (!state.meterStop || !state.audio) startMeter()
  }

  selects.videoinput.addEventListener('change', () => enqueue(async () => {
    state.devices.videoinput = selects.videoinput.value
    if (state.video) await state.video.setDeviceId(state.devices.videoinput)
  }))
  selects.audioinput.addEventListener('change', () => enqueue(async () => {
    state.devices.audioinput = selects.audioinput.value
    if (state.audio) {
      await state.audio.setDeviceId(state.devices.audioinput)
      startMeter() // the level is read from the new device's track
    }
  }))
  selects.audiooutput.addEventListener('change', () => {
    state.devices.audiooutput = selects.audiooutput.value
  })
  qualitySelect.addEventListener('change', () => enqueue(async () => {
    state.quality = qualitySelect.value
    if (state.video) await state.video.restartTrack({ deviceId: state.devices.videoinput || undefined, resolution: qualityPresets[state.quality].resolution })
  }))
  const boxChanged = () => enqueue(() => {
    mediaStatus.textContent = ''
    return reconcile()
  })
  camCheck.addEventListener('change', boxChanged)
  micCheck.addEventListener('change', boxChanged)

  backButton.addEventListener('click', () => ctx.home())

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    status.textContent = ''
    if (!ack.checked) {
      status.textContent = t('lobby.ackRequired')
      ack.setAttribute('aria-invalid', 'true')
      ack.focus()
      return
    }
    ack.removeAttribute('aria-invalid')
    joinButton.disabled = true
    joinButton.textContent = t('lobby.joining')
    // A quick click (or a slow permission prompt) must not enter without the devices the boxes
    // promise: wait for them to open first.
    await state.pending
    stopMeter()
    try {
      state.handedOver = true
      await ctx.enterRoom(session, {
        audioTrack: state.audio,
        videoTrack: state.video,
        quality: state.quality,
        devices: { ...state.devices }
      })
    } catch (err) {
      state.handedOver = false
      status.textContent = t('lobby.connectFailed', { reason: err?.message || String(err) })
      joinButton.disabled = false
      joinButton.textContent = t('lobby.join')
      startMeter()
    }
  })

  // close releases the devices unless the room took the tracks over.
  function close () {
    state.closed = true
    stopMeter()
    if (!state.handedOver) {
      state.audio?.stop()
      state.video?.stop()
    }
  }

  async function start () {
    if (session.canPublish) {
      // One request for both devices first (one permission prompt); reconcile then applies
      // whatever the boxes say by now, including a box unticked while the prompt was open.
      await enqueue(async () => {
        await openBoth()
        await reconcile()
      })
    }
    await fillDevices()
  }

  return { root, start, close }
}

// privacyNotice states what happens to the participant's image and voice, from the server's
// configuration; a fact the server did not state is said to be unknown, never assumed.
function privacyNotice (ctx) {
  const { t, config } = ctx
  const p = config.privacy
  const items = [t('privacy.transmitted')]
  items.push(p.broadcast === null ? t('privacy.broadcast.unknown') : t(p.broadcast ? 'privacy.broadcast.yes' : 'privacy.broadcast.no'))
  items.push(p.recorded === null ? t('privacy.recorded.unknown') : t(p.recorded ? 'privacy.recorded.yes' : 'privacy.recorded.no'))
  if (p.recorded !== false) {
    items.push(p.retentionDays === null ? t('privacy.retention.unknown') : t('privacy.retention', { days: p.retentionDays }))
  }
  if (p.controller) items.push(t('privacy.controller', { controller: p.controller }))
  items.push(p.contact ? t('privacy.contact', { contact: p.contact }) : t('privacy.contact.unknown'))
  items.push(t('privacy.noThirdParty'))
  return h('section', { class: 'privacy', id: 'privacy-notice', 'aria-labelledby': 'privacy-title' },
    h('h2', { id: 'privacy-title', text: t('privacy.title') }),
    h('ul', {}, items.map((text) => h('li', { text }))))
}

// runLevelMeter reports the microphone's level (0..1) about 20 times a second and returns a
// function that stops it and releases the audio graph.
export function runLevelMeter (mediaStreamTrack, onLevel) {
  let audioCtx
  try {
    audioCtx = new AudioContext()
  } catch {
    return () => {}
  }
  const source = audioCtx.createMediaStreamSource(new MediaStream([mediaStreamTrack]))
  const analyser = audioCtx.createAnalyser()
  analyser.fftSize = 1024
  source.connect(analyser)
  const samples = new Float32Array(analyser.fftSize)
  let smoothed = 0
  // Browsers start an AudioContext suspended until a user gesture; try again on the next one.
  const resume = () => { audioCtx.resume().catch(() => {}) }
  if (audioCtx.state === 'suspended') {
    resume()
    document.addEventListener('pointerdown', resume, { once: true })
    document.addEventListener('keydown', resume, { once: true })
  }
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples)
    let sum = 0
    for (const s of samples) sum += s * s
    const rms = Math.sqrt(sum / samples.length)
    // Speech RMS sits around 0.01–0.3; a square-root curve spreads it across the meter.
    const level = Math.min(1, Math.sqrt(rms * 3))
    smoothed = Math.max(level, smoothed * 0.8)
    onLevel(smoothed)
  }, 50)
  return () => {
    clearInterval(timer)
    document.removeEventListener('pointerdown', resume)
    document.removeEventListener('keydown', resume)
    source.disconnect()
    audioCtx.close().catch(() => {})
  }
}
