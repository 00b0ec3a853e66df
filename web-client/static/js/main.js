// Entry point: picks the language, reads the server's configuration and moves between the
// screens (join → lobby → room → left). Each screen is built fresh; only the invitation is kept
// (in this tab's sessionStorage) so that a reload does not lose it.
import { isBrowserSupported } from '../vendor/livekit-client.esm.mjs'
import { h, focusHeading } from './dom.js'
import { startPage, momentText } from './i18n.js'
import { loadConfig } from './config.js'
import { readInvitation, InvitationError, joinByInvitation, showInvitation, LinkRefusal } from './invitation.js'
import { renderJoin, renderAhead } from './join.js'
import { renderLobby } from './lobby.js'
import { enterRoom } from './room.js'

const invitationKey = 'hemicycle.invitation'
const announcementLifetimeMs = 10000

async function boot () {
  const params = new URLSearchParams(location.search)
  const { lang, t } = startPage()

  const main = document.getElementById('main')
  const region = document.getElementById('announcements')
  main.replaceChildren(h('p', { class: 'loading', text: t('app.loading') }))

  const config = await loadConfig()
  let current = null // the screen on show: { close() } or null
  let firstScreen = true

  const ctx = {
    t,
    lang,
    config,
    // announce speaks through the live region and shows the same text briefly on screen.
    announce (text) {
      const item = h('p', { text })
      region.append(item)
      setTimeout(() => item.remove(), announcementLifetimeMs)
      while (region.childElementCount > 4) region.firstElementChild.remove()
    },
    show (root, screen = null) {
      current?.close?.()
      current = screen
      main.replaceChildren(root)
      document.body.dataset.screen = root.className.split(' ').find((c) => ['join', 'lobby', 'room', 'left'].includes(c)) || ''
      // The tab's title names the screen (WCAG 2.4.2), e.g. "Avant d’entrer – Hemicycle".
      const heading = root.querySelector('h1')?.textContent
      document.title = heading ? `${heading} – ${t('app.name')}` : t('app.name')
      // A new screen moves the reading position to its heading; the first one is where a page
      // load starts anyway.
      if (!firstScreen) focusHeading(main)
      firstScreen = false
    },
    home (message) {
      sessionStorage.removeItem(invitationKey)
      history.replaceState(null, '', '/')
      ctx.show(renderJoin(ctx, { message }))
    },
    openLobby (session) {
      sessionStorage.setItem(invitationKey, session.token)
      // The token stays out of the address bar, where a screen share or a shoulder could read it.
      history.replaceState(null, '', '/join')
      const lobby = renderLobby(ctx, session)
      ctx.show(lobby.root, lobby)
      lobby.start()
    },
    enterRoom (session, choices) {
      return enterRoom(ctx, session, choices)
    },
    showLeft (session, reason) {
      ctx.show(renderLeft(ctx, session, reason))
    }
  }

  if (!isBrowserSupported()) {
    main.replaceChildren(h('section', { class: 'card' }, h('h1', { text: t('app.name') }), h('p', { role: 'alert', text: t('app.unsupported') })))
    return
  }

  // An invitation link (/?invitation=CODE) is traded for the member's token, then joins as one.
  // Followed too early (from the mail, days before), it shows the sitting and when the link
  // will admit its holder, which the server records as the link opened.
  const code = params.get('invitation')
  if (code) {
    history.replaceState(null, '', '/') // the code is as secret as a token
    const follow = async () => {
      try {
        ctx.openLobby(readInvitation(await joinByInvitation(code)))
      } catch (err) {
        if (!(err instanceof LinkRefusal && err.kind === 'early')) {
          ctx.home(refusalText(t, lang, err))
          return
        }
        try {
          const sitting = await showInvitation(code)
          ctx.show(renderAhead(ctx, { sitting, zone: err.facts.timeZone, message: refusalText(t, lang, err), retry: follow }))
        } catch (shown) {
          ctx.home(refusalText(t, lang, shown))
        }
      }
    }
    await follow()
    return
  }

  const token = params.get('token') || (location.pathname === '/join' ? sessionStorage.getItem(invitationKey) : null)
  if (!token) {
    ctx.show(renderJoin(ctx))
    return
  }
  try {
    ctx.openLobby(readInvitation(token))
  } catch (err) {
    const expired = err instanceof InvitationError && err.kind === 'expired'
    ctx.home(t(expired ? 'join.invite.expired' : 'join.invite.invalid'))
  }
}

// refusals words each reason the server gives for not admitting an invitation's holder.
const refusals = {
  unknown: 'invitation.refused.unknown',
  replaced: 'invitation.refused.replaced',
  bodyGone: 'invitation.refused.gone',
  sittingGone: 'invitation.refused.gone',
  revoked: 'invitation.refused.revoked',
  seatChanged: 'invitation.refused.seatChanged',
  ended: 'invitation.refused.ended',
  early: 'invitation.refused.early',
  unreachable: 'invitation.refused.unreachable'
}

// refusalText says in the page's language why an invitation link was refused, with the
// moments in the body's time zone; a refusal this page does not know is given in the
// server's words.
function refusalText (t, lang, err) {
  if (!(err instanceof LinkRefusal)) return t('join.invite.invalid')
  const f = err.facts
  const key = refusals[err.kind]
  if (!key) return t('invitation.refused.other', { reason: err.detail })
  return t(key, {
    date: momentText(lang, f.revokedAt ?? f.opensAt ?? f.start, f.timeZone),
    reason: f.reason ?? err.detail,
    seat: f.seat ?? '',
    name: f.name ?? '',
    minutes: f.minutes ?? ''
  })
}

function renderLeft (ctx, session, reason) {
  const { t } = ctx
  return h('section', { class: 'card left', 'aria-labelledby': 'left-title' },
    h('h1', { id: 'left-title', text: t('left.title') }),
    reason ? h('p', { role: 'alert', text: t('left.disconnected', { reason }) }) : null,
    h('div', { class: 'actions' },
      h('button', {
        type: 'button',
        class: 'button primary',
        text: t('left.rejoin'),
        onclick: () => {
          try {
            ctx.openLobby(readInvitation(session.token))
          } catch {
            ctx.home(t('join.invite.expired'))
          }
        }
      }),
      h('button', { type: 'button', class: 'button', text: t('left.home'), onclick: () => ctx.home() })))
}

boot()
