// Invitations are the server-issued JWTs (LiveKit claim layout plus a `hemicycle` claim). The
// client only reads them to greet the participant and label them; the server verifies them.

export const roles = ['chair', 'clerk', 'member', 'agent', 'captioner', 'interpreter', 'viewer']

export class InvitationError extends Error {
  constructor (kind, detail) {
    super(detail ? `${kind}: ${detail}` : kind)
    this.kind = kind // 'invalid' or 'expired'
  }
}

function base64UrlDecode (s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(s.length / 4) * 4, '=')
  const bin = atob(b64)
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)))
}

// readInvitation decodes a token's claims (without checking its signature, which only the
// server can do) and refuses one that is malformed or already expired.
export function readInvitation (token, nowMs = Date.now()) {
  const parts = String(token).trim().split('.')
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) {
    throw new InvitationError('invalid', 'not a JWT')
  }
  let claims
  try {
    claims = JSON.parse(base64UrlDecode(parts[1]))
  } catch (err) {
    throw new InvitationError('invalid', err.message)
  }
  if (!claims || typeof claims !== 'object') throw new InvitationError('invalid', 'no claims')
  if (typeof claims.exp === 'number' && claims.exp * 1000 <= nowMs) {
    throw new InvitationError('expired')
  }
  const video = claims.video && typeof claims.video === 'object' ? claims.video : {}
  const hc = claims.hemicycle && typeof claims.hemicycle === 'object' ? claims.hemicycle : {}
  const role = roles.includes(hc.role) ? hc.role : null
  const seat = Number.isInteger(hc.seat) && hc.seat > 0 ? hc.seat : null
  return {
    body: typeof hc.body === 'string' ? hc.body : '',
    token: parts.join('.'),
    identity: typeof claims.sub === 'string' ? claims.sub : '',
    name: typeof claims.name === 'string' && claims.name ? claims.name : (claims.sub || ''),
    room: typeof video.room === 'string' ? video.room : '',
    role,
    seat,
    // A public viewer, or any token without publish rights, joins without camera or microphone.
    canPublish: role !== 'viewer' && video.canPublish !== false
  }
}

// tokenFromInput accepts what a person may paste: the whole invitation link or the bare token.
export function tokenFromInput (input) {
  const text = String(input || '').trim()
  if (!text) return ''
  if (text.includes('token=')) {
    try {
      return new URL(text, location.origin).searchParams.get('token') || ''
    } catch {
      return ''
    }
  }
  return text
}

// newIdentity makes a unique participant identity for a development invitation, so that two tabs
// opened by the same person do not replace each other in the room.
export function newIdentity (name) {
  const slug = name.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase()
    .replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 24) || 'guest'
  const rnd = new Uint8Array(4)
  crypto.getRandomValues(rnd)
  return `${slug}-${Array.from(rnd, (b) => b.toString(16).padStart(2, '0')).join('')}`
}

// DevInvitationError says why a --dev server gave no development token: kind is 'unreachable',
// 'refused' or 'noToken', detail what the browser or the server said (the page words it).
export class DevInvitationError extends Error {
  constructor (kind, detail = '') {
    super(detail ? `${kind}: ${detail}` : kind)
    this.kind = kind
    this.detail = detail
  }
}

// mintDevInvitation asks a --dev server for a development token.
export async function mintDevInvitation ({ room, name, role, seat }, fetchImpl = fetch) {
  const body = { room, identity: newIdentity(name), name, role }
  if (seat) body.seat = seat
  let res
  try {
    res = await fetchImpl('/api/dev/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body)
    })
  } catch (err) {
    throw new DevInvitationError('unreachable', err.message)
  }
  if (!res.ok) {
    const text = (await res.text().catch(() => '')).trim()
    throw new DevInvitationError('refused', `HTTP ${res.status}${text ? ` – ${text.slice(0, 200)}` : ''}`)
  }
  const data = await res.json()
  if (!data || typeof data.token !== 'string') throw new DevInvitationError('noToken')
  return data.token
}

// LinkRefusal says why the server did not admit the holder of an invitation link: kind is the
// server's refusal (unknown, replaced, bodyGone, sittingGone, revoked, seatChanged, ended,
// early), 'unreachable', or 'other'; facts are the answer's figures (dates, reason, seat); the
// message is the server's own sentence (French), for a kind the page cannot word itself.
export class LinkRefusal extends Error {
  constructor (kind, facts = {}, detail = '') {
    super(detail || kind)
    this.kind = kind
    this.facts = facts
    this.detail = detail
  }
}

// linkCall asks the server about an invitation link's code; a refusal is a LinkRefusal.
async function linkCall (method, code, suffix, fetchImpl) {
  let res
  try {
    res = await fetchImpl(`/api/invitations/${encodeURIComponent(code)}${suffix}`, {
      method,
      headers: { Accept: 'application/json' },
      cache: 'no-store'
    })
  } catch (err) {
    throw new LinkRefusal('unreachable', {}, err.message)
  }
  const data = await res.json().catch(() => null)
  if (!res.ok) {
    const detail = typeof data?.error === 'string' ? data.error : `HTTP ${res.status}`
    throw new LinkRefusal(typeof data?.refusal === 'string' ? data.refusal : 'other', data || {}, detail)
  }
  if (!data || typeof data !== 'object') throw new LinkRefusal('other', {}, `HTTP ${res.status}`)
  return data
}

// joinByInvitation trades the code of an invitation link (/?invitation=CODE) for the member's
// join token for the sitting's room.
export async function joinByInvitation (code, fetchImpl = fetch) {
  const data = await linkCall('POST', code, '/join', fetchImpl)
  if (typeof data.token !== 'string') throw new LinkRefusal('other', {}, 'HTTP 200') // no token: a server this client does not know
  return data.token
}

// showInvitation reads what the link's holder may see of the sitting before it opens (body,
// title, start, place, agenda, seat, name, opensAt); the server records the link as opened.
export function showInvitation (code, fetchImpl = fetch) {
  return linkCall('GET', code, '', fetchImpl)
}
