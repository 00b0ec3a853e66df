// The client's pure modules, run directly in Node (they are plain ES modules with no DOM needs).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { pickLanguage, translator, startPage } from '../../web-client/static/js/i18n.js'
import { readInvitation, tokenFromInput, newIdentity, InvitationError } from '../../web-client/static/js/invitation.js'
import { normalizeConfig, signalUrl } from '../../web-client/static/js/config.js'

function jwt (claims) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url')
  return `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(claims)}.c2lnbmF0dXJl`
}

test('language follows the browser, French by default', () => {
  assert.equal(pickLanguage(['en-GB', 'fr-FR']), 'en')
  assert.equal(pickLanguage(['de-DE', 'fr-CA', 'en']), 'fr')
  assert.equal(pickLanguage(['de-DE', 'es']), 'fr')
  assert.equal(pickLanguage([]), 'fr')
  assert.equal(pickLanguage(['fr-FR'], 'en'), 'en', 'an explicit ?lang= wins')
  assert.equal(pickLanguage(['en-US'], 'xx'), 'en', 'an unknown explicit language is skipped')
})

test('translator fills parameters and falls back visibly', () => {
  const en = translator('en')
  assert.equal(en('announce.joined', { name: 'Ada' }), 'Ada joined the meeting.')
  assert.equal(translator('fr')('announce.joined', { name: 'Ada' }), 'Ada a rejoint la séance.')
  assert.equal(en('no.such.key'), 'no.such.key')
  assert.equal(en('seat', {}), 'seat {seat}', 'a missing parameter stays visible')
})

// A page as startPage sees it: its root and the elements that name a key in data-i18n.
function fakePage (keys) {
  const elements = keys.map((key) => ({ dataset: { i18n: key }, textContent: '' }))
  return { documentElement: { lang: 'fr' }, elements, querySelectorAll: (sel) => (sel === '[data-i18n]' ? elements : []) }
}

test('every page takes its language and its words the same way', () => {
  const page = fakePage(['watch.status.connecting', 'watch.now', 'app.name'])
  const { lang, t } = startPage(page, { languages: ['en-GB', 'fr'] }, '')
  assert.equal(lang, 'en')
  assert.equal(page.documentElement.lang, 'en')
  assert.deepEqual(page.elements.map((e) => e.textContent), ['Connecting…', 'Right now', 'Hemicycle'])
  assert.equal(t('watch.item', { title: 'Budget' }), 'Item under discussion: Budget')

  const fr = fakePage(['watch.status.connecting'])
  assert.equal(startPage(fr, { languages: ['en-GB'] }, '?room=conseil&lang=fr').lang, 'fr', 'an explicit ?lang= wins, as on the other pages')
  assert.equal(fr.elements[0].textContent, 'Connexion…')
  assert.equal(startPage(fakePage([]), { language: 'de-DE' }, '').lang, 'fr', 'a browser without languages[] gives its language')
})

test('an invitation is read from its claims', () => {
  const now = Date.UTC(2026, 0, 1)
  const token = jwt({ sub: 'marie-1', name: 'Marie Curie', exp: now / 1000 + 3600, video: { room: 'conseil', roomJoin: true }, hemicycle: { role: 'member', seat: 12, body: 'ville' } })
  const inv = readInvitation(token, now)
  assert.deepEqual(
    { identity: inv.identity, name: inv.name, room: inv.room, role: inv.role, seat: inv.seat, canPublish: inv.canPublish },
    { identity: 'marie-1', name: 'Marie Curie', room: 'conseil', role: 'member', seat: 12, canPublish: true })

  const viewer = readInvitation(jwt({ sub: 'v', video: { room: 'r' }, hemicycle: { role: 'viewer' } }), now)
  assert.equal(viewer.canPublish, false)
  assert.equal(viewer.name, 'v', 'the identity stands in for a missing name')
  const odd = readInvitation(jwt({ sub: 'x', video: { room: 'r', canPublish: false }, hemicycle: { role: 'dictator', seat: -3 } }), now)
  assert.equal(odd.role, null)
  assert.equal(odd.seat, null)
  assert.equal(odd.canPublish, false)
})

test('bad and expired invitations are refused with a reason', () => {
  const now = Date.UTC(2026, 0, 1)
  const expired = jwt({ sub: 'a', exp: now / 1000 - 1, video: { room: 'r' } })
  assert.throws(() => readInvitation(expired, now), (err) => err instanceof InvitationError && err.kind === 'expired')
  for (const bad of ['', 'abc', 'a.b', 'a.b.c.d', 'a.!!!.c', `x.${Buffer.from('not json').toString('base64url')}.y`]) {
    assert.throws(() => readInvitation(bad, now), (err) => err instanceof InvitationError && err.kind === 'invalid', `accepted ${JSON.stringify(bad)}`)
  }
})

test('a pasted invitation link yields its token', () => {
  globalThis.location = new URL('http://127.0.0.1:7880/')
  assert.equal(tokenFromInput('  http://hemicycle.example/join?token=aaa.bbb.ccc  '), 'aaa.bbb.ccc')
  assert.equal(tokenFromInput('/join?token=aaa.bbb.ccc&lang=en'), 'aaa.bbb.ccc')
  assert.equal(tokenFromInput('aaa.bbb.ccc'), 'aaa.bbb.ccc')
  assert.equal(tokenFromInput(''), '')
})

test('development identities are unique and readable', () => {
  const a = newIdentity('Élise Ðurić de l’Orne')
  const b = newIdentity('Élise Ðurić de l’Orne')
  assert.match(a, /^elise-uric-de-l-orne-[0-9a-f]{8}$/)
  assert.notEqual(a, b)
  assert.match(newIdentity('!!!'), /^guest-[0-9a-f]{8}$/)
})

test('client configuration tolerates missing and malformed fields', () => {
  assert.deepEqual(normalizeConfig(null), {
    dev: false,
    privacy: { broadcast: null, recorded: null, retentionDays: null, controller: null, contact: null }
  })
  const full = normalizeConfig({ dev: true, url: 'ws://x', privacy: { broadcast: true, recorded: false, retentionDays: 0, controller: ' Mairie ', contact: 'dpo@example.org' } })
  assert.deepEqual(full, { dev: true, privacy: { broadcast: true, recorded: false, retentionDays: 0, controller: 'Mairie', contact: 'dpo@example.org' } })
  const goStyle = normalizeConfig({ dev: true, privacy: { Broadcast: false, Recorded: true, RetentionDays: 30, Controller: 'Mairie', Contact: '' } })
  assert.deepEqual(goStyle.privacy, { broadcast: false, recorded: true, retentionDays: 30, controller: 'Mairie', contact: null }, 'field names are read case-insensitively')
  const junk = normalizeConfig({ dev: 'yes', privacy: { broadcast: 'no', retentionDays: -4, controller: '' } })
  assert.equal(junk.dev, false)
  assert.equal(junk.privacy.broadcast, null)
  assert.equal(junk.privacy.retentionDays, null)
  assert.equal(junk.privacy.controller, null)
})

test('the signalling URL is the page\'s own origin', () => {
  assert.equal(signalUrl(new URL('http://127.0.0.1:7880/join')), 'ws://127.0.0.1:7880')
  assert.equal(signalUrl(new URL('https://conseil.example.fr/')), 'wss://conseil.example.fr')
})
