// The chair's bleep of the public programme, end to end: a real `hemicycle --dev` with a 3 s
// programme delay, the chair's console in Chromium (and a second chair tab), a member at home
// whose microphone plays a 440 Hz tone, and the public /watch page listening to the programme.
// The chair bleeps with the keyboard shortcut, with the mouse, and after the fact; what is
// asserted is what the console shows and says, what the server recorded (GET …/bleep), that the
// public hears the 1 kHz bleep no sooner than the delay after it was asked for, and that nobody
// but the chair gets the control or the right. The chair also hands the chair to a member, whose
// page becomes the chair's console (they open, run and close a vote with it) until they hand it back.
import { describe, it, before, after, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { startServer, launchBrowser, joinThroughUI, openClient, toneWav, waitFor, delay, ensureArtifactsDir, artifactsDir, api, exampleRoster } from './harness.mjs'
import { pitchMeter } from './pitch.mjs'
import { bleepChanges, bleepChoices, bleepRunning, changes } from '../../web-client/static/js/council.js'
import { isBleepShortcut, isTyping } from '../../web-client/static/js/bleep.js'

const axeSource = await readFile(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8')

// The pure parts first: what is offered, what is announced, which keys count.

test('the choices of "bleep the last seconds" never reach past the delay', () => {
  assert.deepEqual(bleepChoices(3), [{ seconds: 2, whole: false }, { seconds: 3, whole: true }])
  assert.deepEqual(bleepChoices(10).map((c) => c.seconds), [2, 5, 10])
  assert.deepEqual(bleepChoices(10.5).map((c) => c.seconds), [2, 5, 10], 'a fraction of a second beyond is not offered')
  assert.deepEqual(bleepChoices(1), [{ seconds: 1, whole: true }])
  assert.deepEqual(bleepChoices(0), [])
  assert.deepEqual(bleepChoices(undefined), [])
})

test('bleep announcements follow the server\'s list, whoever changed it', () => {
  const a = { from: '2026-03-05T17:50:00Z', to: '2026-03-05T17:50:04Z' }
  const running = { from: '2026-03-05T17:51:00Z' }
  const ended = { from: '2026-03-05T17:51:00Z', to: '2026-03-05T17:51:03.4Z' }
  const late = { from: '2026-03-05T17:52:00Z', to: '2026-03-05T17:52:05Z' }
  assert.equal(bleepRunning([a, running]), true)
  assert.equal(bleepRunning([a]), false)
  assert.deepEqual(bleepChanges(null, [running]), [], 'the first list is shown, not announced')
  assert.deepEqual(bleepChanges([a], [a, running]), [['council.bleep.say.started', {}]])
  assert.deepEqual(bleepChanges([a, running], [a, ended]), [['council.bleep.say.ended', {}]])
  assert.deepEqual(bleepChanges([a, ended], [a, ended, late]), [['council.bleep.say.passage', { seconds: 5 }]])
  assert.deepEqual(bleepChanges([a, ended], [a, ended]), [])
})

test('a change of chair is announced, to the new chair in the second person', () => {
  const view = (chair) => ({ session: { chair, openedAt: '2026-03-05T17:00:00Z' }, seats: [{ seat: 1, name: 'Anne Morel' }, { seat: 2, name: 'Bruno Lefèvre' }] })
  assert.deepEqual(changes(view(1), view(2), { role: 'member', seat: 4 }), [['council.say.chairChanged', { name: 'Bruno Lefèvre' }]])
  assert.deepEqual(changes(view(1), view(2), { role: 'member', seat: 2 }).map(([k]) => k), ['council.say.youPreside'])
  assert.deepEqual(changes(view(2), view(2), { role: 'chair', seat: 1 }), [])
})

test('the shortcut is Alt+Shift+B, and never while typing text', () => {
  const key = (o) => ({ altKey: false, shiftKey: false, ctrlKey: false, metaKey: false, key: '', code: '', ...o })
  assert.equal(isBleepShortcut(key({ altKey: true, shiftKey: true, key: 'B', code: 'KeyB' })), true)
  assert.equal(isBleepShortcut(key({ altKey: true, shiftKey: true, key: 'ı', code: 'KeyB' })), true, 'a Mac\'s Option changes the character')
  assert.equal(isBleepShortcut(key({ altKey: true, key: 'b', code: 'KeyB' })), false)
  assert.equal(isBleepShortcut(key({ altKey: true, shiftKey: true, ctrlKey: true, key: 'B', code: 'KeyB' })), false)
  assert.equal(isBleepShortcut(key({ altKey: true, shiftKey: true, key: 'X', code: 'KeyB' })), false, 'another layout\'s letter on that key')
  const el = (tagName, type, more = {}) => ({ nodeType: 1, tagName, type, ...more })
  assert.equal(isTyping(el('INPUT', 'text')), true)
  assert.equal(isTyping(el('INPUT', 'number')), true)
  assert.equal(isTyping(el('TEXTAREA')), true)
  assert.equal(isTyping(el('DIV', undefined, { isContentEditable: true })), true)
  assert.equal(isTyping(el('INPUT', 'checkbox')), false)
  assert.equal(isTyping(el('SELECT')), false)
  assert.equal(isTyping(el('BUTTON', 'button')), false)
  assert.equal(isTyping(null), false)
})

// The browser scenario.

const delaySeconds = 3
const roster = exampleRoster(5)

async function axeSerious (page, selector) {
  await page.evaluate(axeSource)
  const results = await page.evaluate((sel) => window.axe.run(sel, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] }
  }), selector)
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)
}

async function announced (page) {
  return page.evaluate(() => window.__hemicycleProbe.announced())
}

// waitAnnounced waits until the page has said something matching pattern, beyond the first
// `already` announcements.
function waitAnnounced (page, pattern, already = 0) {
  return waitFor(`an announcement ${pattern}`, async () => {
    const said = await announced(page)
    return { ok: said.slice(already).some((s) => pattern.test(s)), state: said }
  }, { timeoutMs: 20000, intervalMs: 100 })
}

function pressed (locator, value) {
  return waitFor(`aria-pressed=${value}`, async () => {
    const v = await locator.getAttribute('aria-pressed')
    return { ok: v === value, state: v }
  }, { timeoutMs: 20000, intervalMs: 100 })
}

async function invitation (p) {
  return p.page.evaluate(() => sessionStorage.getItem('hemicycle.invitation'))
}

// listen puts the pitch meter on the watch page's audio (see pitch.mjs), keeping each change in
// window.__pitch.
async function listen (page) {
  await page.evaluate(() => {
    window.__pitch = []
    window.__pitchHeard = (e) => window.__pitch.push(e)
  })
  await page.evaluate(pitchMeter, '__pitchHeard')
}

async function pitches (page) {
  return page.evaluate(() => window.__pitch.slice())
}

// heard waits until the public page hears hz after the given time, and returns when.
async function heard (page, hz, after) {
  const hit = await waitFor(`the public to hear ${hz} Hz after ${new Date(after).toISOString()}`, async () => {
    const events = await pitches(page)
    const e = events.find((x) => x.hz === hz && x.at > after)
    return e ? { at: e.at } : { ok: false, state: events.slice(-12) }
  }, { timeoutMs: 30000, intervalMs: 100 })
  return hit.at
}

describe('the chair bleeps the public programme from the console', { timeout: 360000 }, () => {
  const room = `bip-${randomBytes(3).toString('hex')}`
  let server
  let browser
  const p = {} // chair, chair2 (a second tab of the chair), david (member), public (watch page)
  let chairToken
  let bleepRegion
  let toggle

  const bleeps = async () => {
    const r = await api(server.baseURL, 'GET', `/api/rooms/${room}/bleep`, chairToken)
    assert.equal(r.status, 200, JSON.stringify(r.data))
    return r.data.bleeps || []
  }
  const region = (who, name) => who.page.locator('#council-panel').getByRole('region', { name, exact: true })

  before(async () => {
    await ensureArtifactsDir()
    server = await startServer({ logName: 'server-console-bleep.log', config: `broadcast:\n  enabled: true\n  delay: ${delaySeconds}s\n` })
    // Every page's fake microphone plays the tone; only the member's is open.
    browser = await launchBrowser({ audio: toneWav({ hz: 440 }) })
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
  })

  it('the console offers the bleep once the sitting is open, bounded by the delay', async () => {
    p.chair = await joinThroughUI(browser, server.baseURL, { name: 'Anne Morel', room, role: 'chair', seat: 1, camera: false, mic: false })
    const open = region(p.chair, 'Ouvrir la séance')
    await open.getByLabel('Nom de l’assemblée').fill('Conseil communautaire de la Vallée')
    await open.getByLabel('Nature de l’assemblée').selectOption('epci')
    await open.getByLabel('Règles applicables').selectOption('fr-epci-visio')
    await open.getByLabel('Liste des membres (CSV)').fill(roster)
    await open.getByRole('button', { name: 'Ouvrir la séance' }).click()

    bleepRegion = region(p.chair, 'Son de la diffusion publique')
    await bleepRegion.waitFor({ timeout: 30000 })
    await bleepRegion.getByRole('button', { name: 'Couper le son public' }).waitFor()
    toggle = bleepRegion.locator('button[aria-pressed]') // the same button whatever its words
    assert.equal(await toggle.getAttribute('aria-pressed'), 'false')
    assert.equal(await toggle.getAttribute('aria-keyshortcuts'), 'Alt+Shift+B')
    const hintId = await toggle.getAttribute('aria-describedby')
    assert.match(await p.chair.page.locator(`#${hintId}`).innerText(), /Raccourci clavier : Alt\+Maj\+B/)
    const text = await bleepRegion.innerText()
    assert.match(text, /avec 3 s de différé/)
    assert.match(text, /Son public normal/)
    const last = bleepRegion.getByRole('group', { name: 'Couvrir après coup ce qui vient d’être dit :' })
    assert.deepEqual(await last.getByRole('button').allInnerTexts(), ['2 dernières secondes', 'Tout le différé (3 s)'])
    chairToken = await invitation(p.chair)
    assert.deepEqual(await bleeps(), [])
  })

  it('a member has no bleep control, and the server refuses a member\'s bleep', async () => {
    p.david = await joinThroughUI(browser, server.baseURL, { name: 'David Roussel', room, role: 'member', seat: 4, camera: false })
    await region(p.david, 'Votre siège').waitFor({ timeout: 30000 })
    assert.equal(await p.david.page.locator('[aria-keyshortcuts], .bleep-toggle').count(), 0)
    assert.equal(await p.david.page.getByRole('button', { name: 'Couper le son public' }).count(), 0)
    const refused = await api(server.baseURL, 'POST', `/api/rooms/${room}/bleep`, await invitation(p.david), { on: true })
    assert.equal(refused.status, 403)
    // A client that names no language (Node's fetch) is answered in French, the councils'
    // language, with the English words beside.
    assert.match(refused.data.error, /est réservé à la présidence de séance ; votre jeton est celui du rôle membre \(siège 4\) et c’est le siège 1 qui préside$/)
    assert.match(refused.data.reasons.en, /is for the chair or the seat presiding; your token's role is member \(seat 4\) and seat 1 presides now$/)
    // The shortcut does nothing on the member's page either.
    await p.david.page.locator('section.stage').focus()
    await p.david.page.keyboard.press('Alt+Shift+KeyB')
    await delay(500) // a request that must not come
    assert.deepEqual(await bleeps(), [])
  })

  it('the public hears the member, and a second chair tab follows the same state', async () => {
    p.public = await openClient(browser, server.baseURL, { name: 'public' })
    await p.public.page.goto(`${server.baseURL}/watch/${room}`)
    await listen(p.public.page)
    await heard(p.public.page, 440, 0)
    p.chair2 = await joinThroughUI(browser, server.baseURL, { name: 'Anne Morel', room, role: 'chair', seat: 1, camera: false, mic: false })
    await region(p.chair2, 'Son de la diffusion publique').getByRole('button', { name: 'Couper le son public' }).waitFor({ timeout: 30000 })
  })

  it('the keyboard shortcut starts and ends a bleep, which the public hears after the delay', async (t) => {
    const { page } = p.chair
    const before = (await announced(page)).length
    await page.locator('section.stage').focus() // anywhere on the page that is not a text field
    const pressAt = Date.now()
    await page.keyboard.press('Alt+Shift+KeyB')
    await pressed(toggle, 'true')
    const stop = bleepRegion.getByRole('button', { name: 'Rétablir le son public' })
    assert.equal(await stop.getAttribute('aria-pressed'), 'true')
    assert.match(await bleepRegion.locator('.bleep-state').innerText(), /Bip en cours depuis \d\d:\d\d:\d\d/)
    await waitAnnounced(page, /^Bip en cours : le son public est coupé\.$/, before)
    let list = await bleeps()
    assert.equal(list.length, 1)
    assert.ok(!list[0].to, 'the bleep runs')
    assert.ok(Date.parse(list[0].from) >= pressAt - 1000, `the bleep starts when asked (${list[0].from})`)

    // The other tab agrees, and says so too.
    const other = region(p.chair2, 'Son de la diffusion publique').getByRole('button', { name: 'Rétablir le son public' })
    await pressed(other, 'true')
    await waitAnnounced(p.chair2.page, /^Bip en cours/)

    // The console in its bleeping state passes axe (and is kept as a picture for people).
    await bleepRegion.screenshot({ path: path.join(artifactsDir, 'console-bleep.png') })
    assert.deepEqual(await axeSerious(page, '#council-panel'), [])

    // The public: the member's tone until the delay has passed, then the bleep.
    const toneAt = await heard(p.public.page, 1000, pressAt)
    const early = (await pitches(p.public.page)).filter((e) => e.hz === 1000 && e.at < pressAt)
    assert.deepEqual(early, [], 'no bleep was heard before it was asked for')
    assert.ok(toneAt >= pressAt + delaySeconds * 1000 - 500,
      `the public heard the bleep ${toneAt - pressAt} ms after it was asked for: before the ${delaySeconds} s delay`)
    await p.public.page.locator('#bleep-note').waitFor({ state: 'visible', timeout: 20000 })

    const before2 = (await announced(page)).length
    await page.locator('section.stage').focus()
    const endAt = Date.now()
    await page.keyboard.press('Alt+Shift+KeyB')
    await pressed(toggle, 'false')
    await waitAnnounced(page, /^Fin du bip : le son public est rétabli\.$/, before2)
    assert.match(await bleepRegion.locator('.bleep-state').innerText(), /Son public normal/)
    await pressed(region(p.chair2, 'Son de la diffusion publique').getByRole('button', { name: 'Couper le son public' }), 'false')
    list = await bleeps()
    assert.equal(list.length, 1)
    assert.ok(list[0].to && Date.parse(list[0].to) > Date.parse(list[0].from), `the bleep is closed: ${JSON.stringify(list[0])}`)
    const backAt = await heard(p.public.page, 440, toneAt)
    assert.ok(backAt >= endAt + delaySeconds * 1000 - 500, `the member was heard again ${backAt - endAt} ms after the bleep ended`)
    t.diagnostic(`the public heard the bleep begin ${toneAt - pressAt} ms and end ${backAt - endAt} ms after the key presses (delay ${delaySeconds} s)`)
  })

  it('the shortcut is left alone while the chair types', async () => {
    const { page } = p.chair
    await page.locator('#council-panel').getByText('Ajouter un point à l’ordre du jour').click()
    const title = page.locator('#council-panel').getByLabel('Intitulé', { exact: true })
    await title.fill('Subvention')
    await title.press('Alt+Shift+KeyB')
    // Nothing to wait for but a request that must not come: give it the time of two reads.
    await delay(1500)
    assert.equal(await toggle.getAttribute('aria-pressed'), 'false')
    assert.equal((await bleeps()).length, 1)
    assert.equal(await title.inputValue(), 'Subvention')
  })

  it('the chair bleeps the last seconds, which the public has not heard yet', async () => {
    const { page } = p.chair
    const before = (await announced(page)).length
    const clickAt = Date.now()
    await bleepRegion.getByRole('button', { name: '2 dernières secondes' }).click()
    await waitAnnounced(page, /^Bip ajouté après coup : 2 s couvertes pour le public\.$/, before)
    const list = await bleeps()
    assert.equal(list.length, 2)
    assert.equal(Date.parse(list[1].to) - Date.parse(list[1].from), 2000, `the last 2 s: ${JSON.stringify(list[1])}`)
    assert.equal(await toggle.getAttribute('aria-pressed'), 'false', 'a bleep after the fact is over at once')
    assert.match(await bleepRegion.locator('details.bleep-list summary').innerText(), /Passages couverts par un bip \(2\)/)
    // What was said in those 2 s reaches the public as the bleep, and then the member again.
    const toneAt = await heard(p.public.page, 1000, clickAt)
    await heard(p.public.page, 440, toneAt)
  })

  it('the mouse starts and ends a bleep too', async () => {
    const { page } = p.chair
    const before = (await announced(page)).length
    await toggle.click()
    await pressed(toggle, 'true')
    await waitAnnounced(page, /^Bip en cours/, before)
    await bleepRegion.getByRole('button', { name: 'Rétablir le son public' }).click()
    await pressed(toggle, 'false')
    await waitAnnounced(page, /^Fin du bip/, before)
    const list = await bleeps()
    assert.equal(list.length, 3)
    assert.ok(list.every((b) => b.to), JSON.stringify(list))
  })

  it('the server\'s refusals are shown to the chair as they are written', async () => {
    const { page } = p.chair
    const status = bleepRegion.getByRole('alert')
    // A request reaching past the delay (a console out of date, say): the genuine 409.
    await page.route('**/api/rooms/*/bleep', (route) => route.request().method() === 'POST'
      ? route.continue({ postData: JSON.stringify({ lastSeconds: 60 }) })
      : route.continue())
    await bleepRegion.getByRole('button', { name: '2 dernières secondes' }).click()
    await waitFor('the 409 in the bleep section', async () => {
      const text = await status.innerText()
      return { ok: /^Refusé : impossible de couvrir les 60 dernières secondes : le public les a déjà entendues ; seules les 3 dernières secondes sont encore retenues \(le différé de la diffusion\)$/.test(text), state: text }
    }, { timeoutMs: 15000, intervalMs: 100 })
    await page.unroute('**/api/rooms/*/bleep')
    // A token that is not the chair's (an invitation swapped, say): the genuine 403.
    const member = await invitation(p.david)
    await page.route('**/api/rooms/*/bleep', (route) => route.request().method() === 'POST'
      ? route.continue({ headers: { ...route.request().headers(), authorization: `Bearer ${member}` } })
      : route.continue())
    await toggle.click()
    await waitFor('the 403 in the bleep section', async () => {
      const text = await status.innerText()
      return { ok: /^Refusé : POST \/api\/rooms\/\{room\}\/bleep est réservé à la présidence de séance ; votre jeton est celui du rôle membre \(siège 4\) et c’est le siège 1 qui préside$/.test(text), state: text }
    }, { timeoutMs: 15000, intervalMs: 100 })
    await page.unroute('**/api/rooms/*/bleep')
    assert.equal(await toggle.getAttribute('aria-pressed'), 'false')
    assert.equal((await bleeps()).length, 3, 'nothing was recorded')
    assert.deepEqual(await axeSerious(page, '#council-panel'), [])
  })

  it('the chair hands the chair to a member present, whose page becomes the console until they hand it back (CGCT L2121-14)', async () => {
    // The clerk (by the API: the clerk's page is not the subject here) records three members in
    // the chamber, so that the quorum of 5 seats is reached, and an item on the agenda. Bruno
    // follows the sitting from a tablet in the chamber: his page is a member's.
    const r = await fetch(`${server.baseURL}/api/dev/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ room, identity: 'clerk-bip', name: 'Hugo Bernard', role: 'clerk' })
    })
    assert.equal(r.status, 200)
    const clerk = (await r.json()).token
    for (const seat of [1, 2, 3]) {
      const arrived = await api(server.baseURL, 'POST', `/api/rooms/${room}/attendance/arrival`, clerk, { seat, place: 'chamber' })
      assert.equal(arrived.status, 200, JSON.stringify(arrived.data))
    }
    const added = await api(server.baseURL, 'POST', `/api/rooms/${room}/items`, clerk, { id: '7', title: 'Rapport d’activité' })
    assert.equal(added.status, 200, JSON.stringify(added.data))
    p.bruno = await joinThroughUI(browser, server.baseURL, { name: 'Bruno Lefèvre', room, role: 'member', seat: 2, camera: false, mic: false })
    const brunoPanel = p.bruno.page.locator('#council-panel')
    await region(p.bruno, 'Votre siège').waitFor({ timeout: 30000 })
    assert.equal(await brunoPanel.getByRole('heading', { level: 2 }).innerText(), 'Votre pupitre')
    assert.equal(await region(p.bruno, 'Présidence de séance').count(), 0, 'a member who does not preside has no chair control')

    const { page } = p.chair
    const handover = region(p.chair, 'Présidence de séance')
    assert.match(await handover.innerText(), /Préside : Anne Morel \(siège 1\)/)
    const to = handover.getByLabel('Passer la présidence à')
    await waitFor('Bruno among the choices', async () => {
      const options = await to.locator('option').allInnerTexts()
      return { ok: options.includes('Bruno Lefèvre (siège 2)'), state: options }
    }, { timeoutMs: 15000, intervalMs: 100 })
    const options = await to.locator('option').allInnerTexts()
    assert.ok(!options.some((o) => /siège 1|siège 4/.test(o)), `the presiding seat and an unverified member are not offered: ${options}`)
    const before = (await announced(page)).length
    const davidBefore = (await announced(p.david.page)).length
    const brunoBefore = (await announced(p.bruno.page)).length
    await to.selectOption({ label: 'Bruno Lefèvre (siège 2)' })
    await handover.getByRole('button', { name: 'Passer la présidence' }).click()
    await waitFor('Bruno presiding', async () => {
      const text = await handover.innerText()
      return { ok: /Préside : Bruno Lefèvre \(siège 2\)/.test(text), state: text }
    }, { timeoutMs: 15000, intervalMs: 100 })
    await waitAnnounced(page, /^La présidence passe à Bruno Lefèvre\.$/, before)
    await waitAnnounced(p.david.page, /^La présidence passe à Bruno Lefèvre\.$/, davidBefore)
    await waitAnnounced(p.bruno.page, /^Vous présidez désormais la séance\.$/, brunoBefore)

    // Bruno's page is now the chair's console, and its controls work with his member's token:
    // he opens the item, puts it to a roll call, records the answers and proclaims.
    await waitFor('the console on Bruno\'s page', async () => {
      const title = await brunoPanel.getByRole('heading', { level: 2 }).innerText()
      return { ok: title === 'Console de la présidence', state: title }
    }, { timeoutMs: 15000, intervalMs: 100 })
    assert.equal(await region(p.bruno, 'Votre siège').count(), 0, 'the member\'s panel gave way to the console')
    await region(p.bruno, 'Son de la diffusion publique').getByRole('button', { name: 'Couper le son public' }).waitFor()
    const agenda = region(p.bruno, 'Ordre du jour')
    await agenda.locator('[data-key="open-7"]').click()
    const voteSec = region(p.bruno, 'Vote')
    const opener = voteSec.locator('form.vote-open')
    await opener.waitFor({ timeout: 15000 })
    await opener.getByLabel('Mode de scrutin').selectOption('roll-call')
    await opener.getByLabel('Question posée').fill('Prendre acte du rapport d’activité')
    await opener.getByRole('button', { name: 'Ouvrir le vote' }).click()
    for (const seat of [1, 2, 3]) {
      const answer = voteSec.locator(`[data-key="record-${seat}-for"]`)
      await answer.waitFor({ timeout: 15000 })
      await answer.click()
      await answer.waitFor({ state: 'detached', timeout: 15000 })
    }
    await voteSec.getByRole('button', { name: 'Clore le vote et proclamer le résultat' }).click()
    await waitFor('the vote proclaimed', async () => {
      const text = await region(p.bruno, 'Résultat').innerText()
      return { ok: /Vote 7-\d+ : adopté/.test(text), state: text }
    }, { timeoutMs: 15000, intervalMs: 100 })
    const voted = (await api(server.baseURL, 'GET', `/api/rooms/${room}/state`, chairToken)).data
    const vote = voted.votes.find((v) => v.item === '7')
    assert.equal(vote.mode, 'roll-call')
    assert.equal(vote.result.adopted, true)
    assert.equal(vote.result.for, 3)

    // Anne's chair token no longer presides: the server refuses her taking the chair back, and
    // her console says why in French.
    await waitFor('Anne among the choices', async () => {
      const options = await to.locator('option').allInnerTexts()
      return { ok: options.includes('Anne Morel (siège 1)'), state: options }
    }, { timeoutMs: 15000, intervalMs: 100 })
    await to.selectOption({ label: 'Anne Morel (siège 1)' })
    await handover.getByRole('button', { name: 'Passer la présidence' }).click()
    await waitFor('the refusal in the handover section', async () => {
      const text = await handover.innerText()
      return { ok: /Refusé : POST \/api\/rooms\/\{room\}\/chair est réservé à la présidence de séance ; votre jeton est celui du rôle président de séance \(siège 1\) et c’est le siège 2 qui préside/.test(text), state: text }
    }, { timeoutMs: 15000, intervalMs: 100 })
    assert.equal((await api(server.baseURL, 'GET', `/api/rooms/${room}/state`, chairToken)).data.session.chair, 2)

    // Bruno hands the chair back from his console, and his page is a member's again.
    const brunoHandover = region(p.bruno, 'Présidence de séance')
    await brunoHandover.getByLabel('Passer la présidence à').selectOption({ label: 'Anne Morel (siège 1)' })
    await brunoHandover.getByRole('button', { name: 'Passer la présidence' }).click()
    await waitAnnounced(page, /^Vous présidez désormais la séance\.$/, before)
    await waitFor('Bruno\'s page a member\'s again', async () => {
      const title = await brunoPanel.getByRole('heading', { level: 2 }).innerText()
      return { ok: title === 'Votre pupitre', state: title }
    }, { timeoutMs: 15000, intervalMs: 100 })
    await region(p.bruno, 'Votre siège').waitFor()
    assert.equal(await region(p.bruno, 'Présidence de séance').count(), 0, 'the chair\'s controls are gone')
    assert.equal(await p.bruno.page.getByRole('button', { name: 'Couper le son public' }).count(), 0)
    assert.match(await handover.innerText(), /Préside : Anne Morel \(siège 1\)/)
    const state = await api(server.baseURL, 'GET', `/api/rooms/${room}/state`, chairToken)
    assert.equal(state.data.session.chair, 1)
    assert.deepEqual(await axeSerious(p.bruno.page, '#council-panel'), [])
  })

  it('no page threw or reached another origin', () => {
    for (const who of Object.values(p)) {
      assert.deepEqual(who.errors, [], `${who.name}'s page threw`)
      assert.deepEqual(who.foreignRequests(server.baseURL), [], `${who.name}'s page reached another origin`)
    }
  })
})
