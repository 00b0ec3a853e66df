// The deliberation panel of the room (#council-panel): it follows the council state (GET /state at
// entry, then data packets on topic hemicycle.council and the answers to our own requests) and
// shows the panel of the role in the invitation: the chair's console, the clerk's panel, the
// member's panel, or a read-only summary for everyone else. A member the chair is handed to gets
// the chair's console while presiding, and their own panel back when the chair returns.
import { h } from './dom.js'
import { ApiError, CouncilClient, CouncilStore, councilTopic, decodeMessage, changes, floorBlocksMic, panelRole } from './council.js'
import { sessionForm } from './session-form.js'
import { chairConsole } from './chair.js'
import { clerkPanel } from './clerk.js'
import { memberPanel, summaryPanel } from './member.js'

const builders = { chair: chairConsole, clerk: clerkPanel, member: memberPanel }

export class CouncilPanel {
  // room is the RoomView: its councilPanel element, its microphone and its participants.
  constructor (ctx, session, room) {
    this.ctx = ctx
    this.t = ctx.t
    this.lang = ctx.lang
    this.session = session
    this.room = room
    this.me = { role: session.role, seat: session.seat }
    this.client = new CouncilClient({ room: session.room, token: session.token, lang: ctx.lang })
    this.store = new CouncilStore()
    this.el = room.councilPanel
    this.title = this.el.querySelector('h2')
    this.body = h('div', { class: 'council-content' })
    this.loadStatus = h('p', { class: 'form-status', role: 'alert' })
    this.content = null // { root, update(view) } once a session exists
    this.shown = null // the role whose panel content is
    this.disposed = false
    this.el.append(this.loadStatus, this.body)
    this.titled(this.me.role)
    this.unsubscribe = this.store.subscribe((view, prev) => this.show(view, prev))
  }

  // start reads the state once the room is on screen. A state packet may have come first (the
  // server sends one as soon as we join): then the panel is already built.
  async start () {
    if (!this.content) {
      this.el.hidden = false
      this.body.replaceChildren(h('p', { class: 'hint', text: this.t('app.loading') }))
    }
    await this.refresh()
  }

  // refresh reads the state again (at entry and after a reconnection, when packets may have
  // been missed).
  async refresh () {
    try {
      const view = await this.client.state()
      if (this.disposed) return
      this.loadStatus.textContent = ''
      if (view) this.store.offer(view)
      else if (!this.store.view) this.showNoSession()
    } catch (err) {
      if (this.disposed) return
      this.loadStatus.textContent = this.t('council.loadFailed', { reason: err.reason || err.message })
      if (!this.store.view) this.body.replaceChildren()
    }
  }

  onData (payload, topic) {
    if (topic !== councilTopic || this.disposed) return
    const msg = decodeMessage(payload)
    if (!msg || msg.room !== this.session.room) return
    try {
      this.store.offer(msg.view)
    } catch (err) {
      // Thrown again outside the SDK's event dispatch, so that it reaches the page's error
      // handlers (and the tests) instead of vanishing there.
      setTimeout(() => { throw err })
    }
  }

  showNoSession () {
    const { t } = this
    if (this.me.role === 'chair' || this.me.role === 'clerk') {
      this.body.replaceChildren(sessionForm(this))
    } else if (this.me.role === 'member') {
      this.body.replaceChildren(h('p', { class: 'council-waiting', text: t('council.noSession') }))
    } else {
      // Agents meet without a sitting, and the public has nothing to see before one opens.
      this.el.hidden = true
    }
  }

  // titled names the panel after the role it shows.
  titled (role) {
    this.title.textContent = this.t(`council.panel.${['chair', 'clerk', 'member'].includes(role) ? role : 'other'}`)
    this.el.dataset.role = role || 'other'
  }

  show (view, prev) {
    if (this.disposed) return
    this.el.hidden = false
    const role = panelRole(view, this.me)
    if (this.content && role !== this.shown) {
      // The chair was handed to us, or back: the other panel replaces this one.
      this.content.dispose?.()
      this.content = null
    }
    if (!this.content) {
      const build = builders[role] || summaryPanel
      const hadFocus = this.body.contains(document.activeElement)
      this.content = build(this)
      this.shown = role
      this.titled(role)
      this.body.replaceChildren(this.content.root)
      // The opening form or the other panel is gone: continue from the panel's first heading.
      if (hadFocus) {
        const first = this.body.querySelector('h3')
        if (first) {
          first.tabIndex = -1
          first.focus()
        }
      }
    }
    this.content.update(view)
    for (const [key, params] of changes(prev, view, { role, seat: this.me.seat })) this.ctx.announce(this.t(key, params))
    this.room.councilChanged?.(view)
  }

  // run performs one request; a refusal is shown in the given status line, as the server wrote
  // it. Resolves to true when the server accepted.
  async run (status, request) {
    if (status) status.textContent = ''
    try {
      const answer = await request()
      if (answer && typeof answer === 'object' && 'applied' in answer) this.store.offer(answer)
      return true
    } catch (err) {
      const reason = err instanceof ApiError ? err.reason : (err.message || String(err))
      const text = this.t(err instanceof ApiError && err.status === 0 ? 'council.network' : 'council.refused', { reason })
      // Emptied then refilled so that the same refusal twice is read out twice.
      if (status) setTimeout(() => { status.textContent = text }, 30)
      else this.ctx.announce(text)
      return false
    }
  }

  act (status, path, body) {
    return this.run(status, () => this.client.act(path, body))
  }

  // floorBlocksMe says whether the floor rule keeps our microphone closed right now.
  floorBlocksMe () {
    return floorBlocksMic(this.store.view, this.me)
  }

  participantsChanged () {
    if (this.store.view && this.content?.participantsChanged) this.content.participantsChanged()
  }

  localMediaChanged () {
    if (this.store.view && this.content?.localMediaChanged) this.content.localMediaChanged(this.store.view)
  }

  dispose () {
    this.disposed = true
    this.unsubscribe()
    this.content?.dispose?.()
  }
}
