// The server's client configuration (GET /api/client-config). Every field is optional: an older or
// differently configured server must still get a working client, with "not stated" shown in the
// privacy notice rather than a guess.

export async function loadConfig (fetchImpl = fetch) {
  let raw = {}
  try {
    const res = await fetchImpl('/api/client-config', { headers: { Accept: 'application/json' }, cache: 'no-store' })
    if (res.ok) raw = await res.json()
  } catch {
    // An unreachable or malformed config leaves the defaults below.
  }
  return normalizeConfig(raw)
}

export function normalizeConfig (raw) {
  const obj = lowerKeys(raw)
  const p = lowerKeys(obj.privacy)
  return {
    dev: obj.dev === true,
    privacy: {
      broadcast: typeof p.broadcast === 'boolean' ? p.broadcast : null,
      recorded: typeof p.recorded === 'boolean' ? p.recorded : null,
      retentionDays: Number.isFinite(p.retentiondays) && p.retentiondays >= 0 ? p.retentiondays : null,
      controller: typeof p.controller === 'string' && p.controller.trim() ? p.controller.trim() : null,
      contact: typeof p.contact === 'string' && p.contact.trim() ? p.contact.trim() : null
    }
  }
}

// lowerKeys reads field names case-insensitively ("retentionDays", "RetentionDays"), since the
// server's JSON spelling is not ours to fix from here.
function lowerKeys (value) {
  const out = {}
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) out[k.toLowerCase()] = v
  }
  return out
}

// signalUrl is where the SDK opens its WebSocket: always this page's own origin. The server's
// configured URL is not used because the Content-Security-Policy allows only this origin, and a
// URL spelled with another host name (127.0.0.1 against localhost) would be refused.
export function signalUrl (loc = location) {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}`
}
