// The chair's bleep of the public programme: citizens watch the sitting a few seconds late, so
// that what must not be broadcast (a discussion about a person) can be replaced by a tone in
// every public output. The chair starts and ends a bleep (button or keyboard shortcut), or
// bleeps the last seconds after the fact. The state is the server's: read after each action
// and every few seconds, so that two chair tabs, or two chairs, agree.
import { h, svg, uniqueId } from './dom.js'
import { ApiError, bleepChanges, bleepChoices, bleepRunning, bleepSeconds } from './council.js'
import { section } from './council-ui.js'

// The shortcut: Alt+Shift+B ("bip", "bleep"). Browsers leave Alt+Shift+letter to pages, screen
// readers do not take it (their commands use their own modifier, and their single-letter
// browse-mode keys are untouched), and B sits at the same place on AZERTY and QWERTY.
export const bleepShortcut = 'Alt+Shift+B'
const pollMs = 2000
const retryMs = 5000

export function isBleepShortcut (ev) {
  if (!ev.altKey || !ev.shiftKey || ev.ctrlKey || ev.metaKey) return false
  // On a Mac, Option changes the character: fall back to the key's position then.
  return ev.key === 'B' || ev.key === 'b' || (ev.code === 'KeyB' && !/^[a-z]$/i.test(ev.key))
}

const textInputTypes = new Set(['text', 'search', 'email', 'number', 'password', 'tel', 'url', 'date', 'datetime-local', 'month', 'time', 'week'])

// isTyping says whether a key pressed on el is typed text, which the shortcut must not steal.
export function isTyping (el) {
  if (!el || el.nodeType !== 1) return false
  if (el.isContentEditable || el.tagName === 'TEXTAREA') return true
  return el.tagName === 'INPUT' && textInputTypes.has((el.type || 'text').toLowerCase())
}

export function bleepDesk (panel) {
  const { t, lang } = panel
  const sec = section(t('council.bleep.heading'), 'bleep')
  sec.root.hidden = true

  const hintId = uniqueId('bleep-hint')
  const delayText = h('p', { class: 'bleep-delay' })
  const stateText = h('strong', { class: 'bleep-state-text', text: t('council.bleep.off') })
  const state = h('p', { class: 'bleep-state', dataset: { bleeping: 'false' } }, bleepIcon(), stateText)
  const toggle = h('button', {
    type: 'button',
    class: 'button bleep-toggle',
    'aria-pressed': 'false',
    text: t('council.bleep.start'),
    'aria-keyshortcuts': bleepShortcut,
    'aria-describedby': hintId,
    dataset: { key: 'bleep-toggle' },
    onclick: () => setBleep(!running)
  })
  const hint = h('p', { class: 'hint', id: hintId, text: t('council.bleep.shortcut') })
  const lastLabelId = uniqueId('bleep-last')
  const lastButtons = h('div', { class: 'row-actions' })
  const lastGroup = h('div', { class: 'bleep-last', role: 'group', 'aria-labelledby': lastLabelId },
    h('p', { id: lastLabelId, text: t('council.bleep.lastLabel') }), lastButtons)
  const passagesSummary = h('summary')
  const passagesList = h('ul', { class: 'bleep-passages' })
  const passages = h('details', { class: 'bleep-list', hidden: true }, passagesSummary, passagesList)
  sec.render(delayText, state, h('div', { class: 'actions' }, toggle), hint, lastGroup, passages)

  let bleeps = null // the server's list, once read
  let running = false
  let delaySeconds = 0
  let pollError = '' // the text shown for a failed read, cleared when reading works again
  let busy = false
  let timer = null
  let disposed = false

  function show (list) {
    const prev = bleeps
    bleeps = list || []
    running = bleepRunning(bleeps)
    const current = bleeps.find((b) => !b.to)
    toggle.setAttribute('aria-pressed', String(running))
    toggle.textContent = t(running ? 'council.bleep.stop' : 'council.bleep.start')
    toggle.classList.toggle('danger', running)
    state.dataset.bleeping = String(running)
    stateText.textContent = running
      ? t('council.bleep.on', { time: clockText(lang, current.from) })
      : t('council.bleep.off')
    const done = bleeps.filter((b) => b.to)
    passages.hidden = done.length === 0
    passagesSummary.textContent = t('council.bleep.passages', { n: done.length })
    passagesList.replaceChildren(...done.map((b) => h('li', {
      text: t('council.bleep.passage', { from: clockText(lang, b.from), to: clockText(lang, b.to), seconds: bleepSeconds(b) })
    })))
    for (const [key, params] of bleepChanges(prev, bleeps)) panel.ctx.announce(t(key, params))
  }

  function setChoices () {
    delayText.textContent = t('council.bleep.delay', { seconds: formatSeconds(lang, delaySeconds) })
    lastButtons.replaceChildren(...bleepChoices(delaySeconds).map((c) => {
      const text = c.whole ? t('council.bleep.lastWhole', { seconds: c.seconds }) : t('council.bleep.lastN', { seconds: c.seconds })
      return h('button', {
        type: 'button',
        class: 'button small',
        text,
        dataset: { key: `bleep-last-${c.seconds}`, seconds: String(c.seconds) },
        onclick: () => bleepLast(c.seconds)
      })
    }))
  }

  // act sends one bleep request and shows the list the server answers with; a refusal is shown
  // in the section's alert line as the server wrote it.
  async function act (body) {
    if (busy) return false
    busy = true
    try {
      return await panel.run(sec.status, async () => {
        const answer = await panel.client.bleep(body)
        if (disposed) return
        show(answer.bleeps)
        // The bleep stands, but the minutes will not name it: the chair must know, to note it.
        if (answer.recordError) sec.status.textContent = t('council.bleep.notRecorded', { reason: answer.recordError })
      })
    } finally {
      busy = false
    }
  }

  function setBleep (on) {
    return act({ on })
  }

  function bleepLast (seconds) {
    return act({ lastSeconds: seconds })
  }

  async function poll () {
    timer = null
    try {
      const answer = await panel.client.bleeps()
      if (disposed) return
      if (pollError && sec.status.textContent === pollError) sec.status.textContent = ''
      pollError = ''
      if (answer.delaySeconds && answer.delaySeconds !== delaySeconds) {
        delaySeconds = answer.delaySeconds
        setChoices()
      }
      show(answer.bleeps)
    } catch (err) {
      if (disposed) return
      const reason = err instanceof ApiError ? err.reason : (err.message || String(err))
      const text = t(err instanceof ApiError && err.status === 0 ? 'council.network' : 'council.bleep.readFailed', { reason })
      // Said once, not at every failed read.
      if (text !== pollError) {
        pollError = text
        sec.status.textContent = text
      }
    }
    if (!disposed) timer = setTimeout(poll, pollMs)
  }

  async function start () {
    let info
    try {
      info = await panel.client.programme()
    } catch {
      if (!disposed) timer = setTimeout(start, retryMs)
      return
    }
    if (disposed || !info) return // no public programme: nothing to bleep
    delaySeconds = info.delaySeconds || 0
    setChoices()
    sec.root.hidden = false
    document.addEventListener('keydown', onKey)
    await poll()
  }

  function onKey (ev) {
    if (sec.root.hidden || ev.repeat || !isBleepShortcut(ev) || isTyping(ev.target)) return
    ev.preventDefault()
    setBleep(!running)
  }

  start()

  return {
    root: sec.root,
    dispose () {
      disposed = true
      if (timer) clearTimeout(timer)
      document.removeEventListener('keydown', onKey)
    }
  }
}

// A loudspeaker struck through: the bleep state is said in words too, never by colour alone.
function bleepIcon () {
  return svg([
    ['path', { d: 'M4 9h4l5-4v14l-5-4H4z' }],
    ['line', { x1: 16, y1: 9, x2: 22, y2: 15 }],
    ['line', { x1: 22, y1: 9, x2: 16, y2: 15 }]
  ])
}

// clockText is a time with seconds: a bleep is a matter of seconds.
function clockText (lang, iso) {
  if (!iso) return ''
  return new Intl.DateTimeFormat(lang, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).format(new Date(iso))
}

function formatSeconds (lang, s) {
  return new Intl.NumberFormat(lang, { maximumFractionDigits: 1 }).format(s)
}
