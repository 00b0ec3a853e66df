// The captioner's desk, in the room of a captioner's invitation: made for typing fast. The line
// being typed goes out as an interim caption (at most every interimMs), Enter sends it final; ↑
// in the empty input takes the last line back to correct it (the same segment id sent final
// again); Alt+↑/Alt+↓ attribute the line to another participant, Alt+0 back to whoever has the
// floor. Lines go through POST /api/rooms/{room}/captions (the browser SDK cannot publish a
// Transcription packet), one at a time and in order, so that a line's versions never overtake
// each other. Another captioner of the room takes over by typing: the desk lists them.
import { h, uniqueId } from './dom.js'
import { seatName } from './council.js'
import { setOptions } from './council-ui.js'

export const interimMs = 300
export const speakerShortcuts = ['Alt+ArrowUp', 'Alt+ArrowDown', 'Alt+0'].join(' ')
const historyLength = 5

// CaptionSender posts captions one after another. A newer interim version of a line replaces
// the one still waiting; finals are all sent.
export class CaptionSender {
  constructor (post, onDone) {
    this.post = post
    this.onDone = onDone // (caption, answer, error)
    this.queue = []
    this.busy = false
  }

  send (caption) {
    this.queue = this.queue.filter((c) => c.final || c.id !== caption.id)
    this.queue.push(caption)
    this.pump()
  }

  async pump () {
    if (this.busy) return
    this.busy = true
    while (this.queue.length > 0) {
      const c = this.queue.shift()
      try {
        this.onDone(c, await this.post(c), null)
      } catch (err) {
        this.onDone(c, null, err)
      }
    }
    this.busy = false
  }
}

// speakerKey says which key of a keydown moves the attribution: -1, +1, 0 (back to the floor)
// or null for any other key.
export function speakerKey (ev) {
  if (!ev.altKey || ev.ctrlKey || ev.metaKey || ev.shiftKey) return null
  if (ev.key === 'ArrowUp') return -1
  if (ev.key === 'ArrowDown') return 1
  if (ev.key === '0' || ev.code === 'Digit0' || ev.code === 'Numpad0') return 0
  return null
}

export function captionerDesk (view) {
  const { t } = view
  const lang = view.ctx.lang
  const me = view.room.localParticipant
  let serial = 0
  const newId = () => `${me.identity}-${Date.now().toString(36)}-${++serial}`
  let lineId = null // made at the first version of a line: our identity is known once connected
  let editing = null // the line being corrected: { id, speaker, text }
  let timer = null
  const history = [] // the last lines sent final: { id, text, speaker, to }
  let lastReason = '' // of the last refusal shown

  const titleId = uniqueId('captioner-title')
  const inputId = uniqueId('captioner-input')
  const hintId = uniqueId('captioner-hint')
  const floorText = h('p', { class: 'captioner-floor', role: 'status' })
  const speaker = h('select', { id: uniqueId('captioner-speaker'), onchange: () => showSpeaker() })
  const input = h('textarea', {
    id: inputId,
    class: 'captioner-input',
    rows: 3,
    autocomplete: 'off',
    spellcheck: false,
    'aria-describedby': hintId,
    'aria-keyshortcuts': speakerShortcuts
  })
  const mode = h('p', { class: 'captioner-mode', role: 'status' })
  const refusal = h('p', { class: 'form-status', role: 'alert' })
  const sentList = h('ol', { class: 'captioner-history' })
  const others = h('p', { class: 'captioner-others' })

  const root = h('section', { class: 'captioner-desk', 'aria-labelledby': titleId },
    h('h2', { id: titleId, text: t('captioner.title') }),
    floorText,
    h('div', { class: 'field' }, h('label', { for: speaker.id, text: t('captioner.speaker') }), speaker),
    h('div', { class: 'field' }, h('label', { for: inputId, text: t('captioner.input') }), input),
    h('p', { class: 'hint', id: hintId, text: t('captioner.hint') }),
    mode, refusal,
    h('h3', { text: t('captioner.sent') }), sentList,
    others)

  // candidates are those who may be speaking: everyone in the room but the public and the
  // captioners, ourselves excluded.
  function candidates () {
    const out = []
    for (const p of view.room.remoteParticipants.values()) {
      const { role } = view.roleOf(p)
      if (role === 'viewer' || role === 'captioner' || p.identity.startsWith('hemicycle-')) continue
      out.push({ identity: p.identity, name: p.name || p.identity, detail: view.roleText(p) })
    }
    return out.sort((a, b) => a.name.localeCompare(b.name, lang))
  }

  function nameOf (identity) {
    const p = view.room.getParticipantByIdentity(identity)
    return p ? (p.name || p.identity) : identity
  }

  // floor is whom the server attributes an unnamed line to: the floor holder, else the seat
  // presiding ({ name, presiding }); null when neither.
  function floor () {
    const v = view.council?.store.view
    if (!v?.session?.openedAt) return null
    const seat = v.floor?.holder || v.session.chair
    if (!seat) return null
    return { name: seatName(v, seat) || t('seat', { seat }), presiding: !v.floor?.holder }
  }

  // fillSpeakers offers the floor and each candidate; the list is rebuilt only when it changed
  // (an open list would close under the mouse), and a speaker who left falls back to the floor.
  function fillSpeakers () {
    const f = floor()
    const auto = !f ? t('captioner.autoNobody') : t(f.presiding ? 'captioner.autoPresiding' : 'captioner.auto', { name: f.name })
    setOptions(speaker, [{ value: '', text: auto },
      ...candidates().map((c) => ({ value: c.identity, text: `${c.name} (${c.detail})` }))])
    showSpeaker()
  }

  // showSpeaker says whom the next line goes to; the status is rewritten only when that changes,
  // so that a screen reader hears each change once.
  function showSpeaker () {
    const chosen = speaker.value
    const f = floor()
    let text = t('captioner.toNobody')
    if (chosen) text = t('captioner.to', { name: nameOf(chosen) })
    else if (f) text = t('captioner.to', { name: t(f.presiding ? 'captioner.presiding' : 'captioner.holder', { name: f.name }) })
    if (floorText.textContent !== text) floorText.textContent = text
    floorText.dataset.speaker = chosen || 'floor'
  }

  function showOthers () {
    const names = []
    for (const p of view.room.remoteParticipants.values()) {
      if (view.roleOf(p).role === 'captioner') names.push(p.name || p.identity)
    }
    others.textContent = names.length ? t('captioner.others', { names: names.join(', ') }) : t('captioner.alone')
    others.dataset.count = String(names.length)
  }

  const sender = new CaptionSender(
    (c) => view.council.client.caption({ speaker: c.speaker, segments: [{ id: c.id, text: c.text, final: c.final, language: lang }] }),
    (c, answer, err) => {
      if (err) {
        // Said once, not at every interim version refused for the same reason.
        const reason = err.reason || err.message
        if (c.final || reason !== lastReason) refusal.textContent = t('captioner.refused', { reason, text: c.text })
        lastReason = reason
        // A refused line comes back to the input, unless the captioner has gone on typing: the
        // alert still holds its words.
        const i = history.findIndex((l) => l.id === c.id && l.text === c.text)
        if (c.final && i >= 0 && !editing && input.value === '') {
          history.splice(i, 1)
          input.value = c.text
          lineId = c.id
          renderHistory()
        }
        return
      }
      lastReason = ''
      if (c.final) {
        refusal.textContent = ''
        const line = history.find((l) => l.id === c.id)
        if (line) line.to = answer?.speaker || ''
        renderHistory()
      }
    })

  function send (final) {
    clearTimeout(timer)
    timer = null
    const text = input.value.replace(/\s+/g, ' ').trim()
    if (editing) {
      if (!final || !text) return
      sender.send({ id: editing.id, speaker: editing.speaker, text, final: true })
      const line = history.find((l) => l.id === editing.id)
      if (line) line.text = text
      stopEditing()
      return
    }
    if (!text) return
    lineId ||= newId()
    const c = { id: lineId, speaker: speaker.value, text, final }
    sender.send(c)
    if (final) {
      history.push({ id: c.id, text, speaker: c.speaker, to: '' })
      while (history.length > historyLength) history.shift()
      lineId = null
      input.value = ''
      renderHistory()
    }
  }

  function correct (line) {
    if (!line) return
    clearTimeout(timer)
    timer = null
    // The correction keeps the line's speaker, not whoever has the floor now.
    editing = { id: line.id, speaker: line.to || line.speaker }
    input.value = line.text
    mode.textContent = t('captioner.correcting', { text: line.text })
    input.focus()
    input.setSelectionRange(input.value.length, input.value.length)
  }

  function stopEditing () {
    editing = null
    input.value = ''
    mode.textContent = ''
  }

  function renderHistory () {
    sentList.replaceChildren(...history.map((l, i) => h('li', { dataset: { segment: l.id } },
      h('span', { class: 'caption-speaker', text: l.to ? t('captions.speaker', { name: nameOf(l.to) }) : '' }),
      h('span', { class: 'caption-text', text: l.text }),
      i === history.length - 1
        ? h('button', { type: 'button', class: 'button small', text: t('captioner.correct'), 'aria-label': t('captioner.correctLine', { text: l.text }), onclick: () => correct(l) })
        : null)))
  }

  input.addEventListener('keydown', (ev) => {
    const move = speakerKey(ev)
    if (move !== null) {
      ev.preventDefault()
      const n = speaker.options.length
      speaker.selectedIndex = move === 0 ? 0 : (speaker.selectedIndex + move + n) % n
      showSpeaker()
      return
    }
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault()
      send(true)
    } else if (ev.key === 'ArrowUp' && !ev.altKey && input.value === '' && !editing) {
      ev.preventDefault()
      correct(history[history.length - 1])
    } else if (ev.key === 'Escape' && editing) {
      ev.preventDefault()
      stopEditing()
    }
  })
  input.addEventListener('input', () => {
    if (editing || timer) return
    timer = setTimeout(() => send(false), interimMs)
  })

  const unsubscribe = view.council ? view.council.store.subscribe(() => fillSpeakers()) : () => {}
  fillSpeakers()
  showOthers()
  renderHistory()
  return {
    root,
    input,
    participantsChanged () {
      fillSpeakers()
      showOthers()
    },
    dispose () {
      clearTimeout(timer)
      unsubscribe()
    }
  }
}
