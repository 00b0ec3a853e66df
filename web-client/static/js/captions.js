// Live captions as every LiveKit front end reads them: lk.transcription text streams (what
// @livekit/components-react's useTranscriptions reads) and the older Transcription packets
// (livekit-client's RoomEvent.TranscriptionReceived). A server may send either or both; both
// land in one CaptionFeed keyed by segment id, so a line sent both ways shows once. The room's
// page and /watch show the feed in a CaptionBand whose size, contrast and position the viewer
// chooses, kept in this browser.
import { RoomEvent } from '../vendor/livekit-client.esm.mjs'
import { h, uniqueId } from './dom.js'

export const transcriptionTopic = 'lk.transcription'
const attrSegment = 'lk.segment_id'
const attrFinal = 'lk.transcription_final'

// CaptionFeed keeps the recent lines in the order they began. A line's interim versions are
// replaced by the next, its final one by a later final (a captioner's correction); an interim
// arriving after the final (the other path, or a late packet) changes nothing.
export class CaptionFeed {
  constructor ({ keep = 40, now = () => Date.now() } = {}) {
    this.keep = keep
    this.now = now
    this.lines = new Map() // segment id → { id, text, final, speaker, first, last }
    this.listeners = new Set()
  }

  // offer takes one version of a line; it returns the line when it changed, null otherwise.
  offer ({ id, text, final, speaker }) {
    if (!id || typeof text !== 'string') return null
    const line = this.lines.get(id)
    if (line) {
      if (line.final && !final) return null
      if (line.text === text && line.final === final && (!speaker || speaker === line.speaker)) return null
      line.text = text
      line.final = Boolean(final)
      line.speaker = speaker || line.speaker
      line.last = this.now()
    } else {
      const at = this.now()
      this.lines.set(id, { id, text, final: Boolean(final), speaker: speaker || '', first: at, last: at })
      while (this.lines.size > this.keep) this.lines.delete(this.lines.keys().next().value)
    }
    const changed = this.lines.get(id)
    for (const fn of this.listeners) fn(changed, !line)
    return changed
  }

  // recent lists the last n lines, oldest first.
  recent (n) {
    return [...this.lines.values()].slice(-n)
  }

  subscribe (fn) {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }
}

// followCaptions feeds a livekit-client Room's captions, both ways they come, into feed.
export function followCaptions (room, feed) {
  room.registerTextStreamHandler(transcriptionTopic, async (reader, from) => {
    const attrs = reader.info.attributes || {}
    let text
    try {
      text = await reader.readAll()
    } catch {
      return // the stream was cut (the sender left): its next version will come whole
    }
    feed.offer({ id: attrs[attrSegment] || reader.info.id, text, final: attrs[attrFinal] === 'true', speaker: from?.identity })
  })
  room.on(RoomEvent.TranscriptionReceived, (segments, participant) => {
    for (const s of segments) feed.offer({ id: s.id, text: s.text, final: s.final, speaker: participant?.identity })
  })
}

// The display settings, kept per browser under one key for every page.
export const settingsKey = 'hemicycle.captions'
export const captionSettings = {
  size: ['medium', 'large', 'xlarge'],
  contrast: ['standard', 'high', 'yellow'],
  position: ['bottom', 'top']
}
const defaults = { shown: true, size: 'medium', contrast: 'standard', position: 'bottom' }

// readSettings returns the saved settings, each checked against what is offered.
export function readSettings (storage) {
  let saved = {}
  try {
    saved = JSON.parse(storage?.getItem(settingsKey) || '{}') || {}
  } catch {
    saved = {}
  }
  const out = { ...defaults }
  for (const [name, values] of Object.entries(captionSettings)) {
    if (values.includes(saved[name])) out[name] = saved[name]
  }
  if (typeof saved.shown === 'boolean') out.shown = saved.shown
  return out
}

function saveSettings (storage, settings) {
  try {
    storage?.setItem(settingsKey, JSON.stringify(settings))
  } catch {
    // Storage refused (private mode, quota): the choice holds for this page only.
  }
}

// CaptionBand shows the last lines of a feed, each with its speaker's name. lines is the
// visible band (placed over or beside the media by the page); settings holds the controls; a
// visually hidden live region reads each finished line once, not every interim version.
export class CaptionBand {
  constructor ({ t, feed, nameOf = () => '', storage = globalThis.localStorage, visible = 3 }) {
    this.t = t
    this.feed = feed
    this.nameOf = nameOf
    this.storage = storage
    this.visible = visible
    this.settingsNow = readSettings(storage)
    this.list = h('div', { class: 'caption-lines' })
    this.lines = h('div', { class: 'caption-band', role: 'region', 'aria-label': t('captions.band'), hidden: true }, this.list)
    this.spoken = h('div', { class: 'visually-hidden', 'aria-live': 'polite', 'aria-atomic': 'false' })
    this.settings = h('div', { class: 'caption-settings' }, this.controls(), this.spoken)
    this.apply()
    this.unsubscribe = feed.subscribe((line) => this.changed(line))
  }

  controls () {
    const { t } = this
    const shown = h('input', { type: 'checkbox', checked: this.settingsNow.shown, onchange: () => this.set('shown', shown.checked) })
    const select = (name) => {
      const id = uniqueId(`caption-${name}`)
      const el = h('select', { id, onchange: () => this.set(name, el.value) },
        captionSettings[name].map((v) => h('option', { value: v, text: t(`captions.${name}.${v}`), selected: v === this.settingsNow[name] })))
      return h('div', { class: 'field' }, h('label', { for: id, text: t(`captions.${name}`) }), el)
    }
    return h('div', { class: 'caption-controls' },
      h('label', { class: 'check' }, shown, h('span', { text: t('captions.shown') })),
      select('size'), select('contrast'), select('position'))
  }

  set (name, value) {
    this.settingsNow = { ...this.settingsNow, [name]: value }
    saveSettings(this.storage, this.settingsNow)
    this.apply()
  }

  apply () {
    const s = this.settingsNow
    Object.assign(this.lines.dataset, { size: s.size, contrast: s.contrast, position: s.position })
    this.lines.hidden = !s.shown || this.list.childElementCount === 0
  }

  changed (line) {
    this.render()
    if (line.final && this.settingsNow.shown) {
      const who = this.nameOf(line.speaker)
      this.spoken.append(h('p', { text: who ? this.t('captions.said', { name: who, text: line.text }) : line.text }))
      while (this.spoken.childElementCount > 3) this.spoken.firstElementChild.remove()
    }
  }

  render () {
    let previous = null
    const rows = this.feed.recent(this.visible).map((line) => {
      // The name is written when the speaker changes, as subtitles do.
      const who = line.speaker !== previous ? this.nameOf(line.speaker) : ''
      previous = line.speaker
      return h('p', { class: 'caption-line', dataset: { segment: line.id, final: String(line.final), speaker: line.speaker } },
        who ? h('span', { class: 'caption-speaker', text: this.t('captions.speaker', { name: who }) }) : null,
        h('span', { class: 'caption-text', text: line.text }))
    })
    this.list.replaceChildren(...rows)
    this.apply()
  }

  dispose () {
    this.unsubscribe()
  }
}
