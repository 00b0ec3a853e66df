// Every present member votes (issue 14, item 3), end to end: an electronic vote in which two
// members sit in the chamber without a device and one takes part from home. In Chromium, the
// clerk records the answer one of them gives aloud, the chair records her own. Closing the vote
// opens a dialog that names those who have not voted, and follows the state: once the remote
// member has voted from his own page, it names only the member of the chamber who did not
// answer. The chair confirms; the result and the minutes list her as not having taken part, and
// the minutes say who recorded the chamber's ballot. The dialog passes
// axe-core. The sitting's setup (opening, arrivals, the item) goes through the API: the screens
// under test are the vote's.
import { describe, it, before, after, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { startServer, launchBrowser, joinThroughUI, waitFor, textOf, ensureArtifactsDir, artifactsDir, api, exampleRoster, axeSerious } from './harness.mjs'
import { nonVoters, recordableVoters } from '../../web-client/static/js/council.js'

test('the consoles offer to record the ballots the server lets them record', () => {
  const pending = [{ seat: 1, castBy: 1, inChamber: true }, { seat: 3, castBy: 3, inChamber: true }, { seat: 4, castBy: 4 }, { seat: 6, castBy: 4 }]
  const seats = (list) => list.map((p) => p.seat)
  assert.deepEqual(seats(recordableVoters({ mode: 'electronic' }, pending, 0)), [1, 3], 'the clerk: the chamber only')
  assert.deepEqual(seats(recordableVoters({ mode: 'electronic' }, pending, 4)), [1, 3, 4, 6], 'a chair at a distance records her own and her proxy')
  assert.deepEqual(seats(recordableVoters({ mode: 'roll-call' }, pending, 0)), [1, 3, 4, 6], 'a roll call: every answer called out')
  assert.deepEqual(recordableVoters({ mode: 'secret' }, pending, 1), [])
  const view = (mode) => ({ openVote: 'v', votes: [{ id: 'v', mode }], pendingVoters: pending })
  assert.deepEqual(nonVoters(view('electronic')), [1, 3, 4, 6])
  assert.deepEqual(nonVoters(view('secret')), [], 'a secret ballot names nobody')
  assert.deepEqual(nonVoters({ votes: [], pendingVoters: pending }), [], 'no vote open')
})

const panel = (p) => p.page.locator('#council-panel')
const region = (p, name) => panel(p).getByRole('region', { name, exact: true })
const row = (p, regionName, who) => region(p, regionName).getByRole('group', { name: who, exact: true })

describe('an electronic vote with members in the chamber without a device', { timeout: 300000 }, () => {
  const room = `salle-${randomBytes(3).toString('hex')}`
  let server
  let browser
  const p = {} // chair, clerk, david (at home)
  let tokens

  const must = async (who, route, body) => {
    const r = await api(server.baseURL, 'POST', `/api/rooms/${room}${route}`, who, body)
    assert.equal(r.status, 200, `${route}: ${JSON.stringify(r.data)}`)
    return r.data
  }

  before(async () => {
    await ensureArtifactsDir()
    server = await startServer({ logName: 'server-chamber-vote.log' })
    browser = await launchBrowser()
    const token = async (identity, name, role, seat) => {
      const r = await api(server.baseURL, 'POST', '/api/dev/token', '', { room, identity, name, role, seat })
      assert.equal(r.status, 200, JSON.stringify(r.data))
      return r.data.token
    }
    tokens = { chair: await token('anne', 'Anne Morel', 'chair', 1), clerk: await token('greffe', 'Greffe', 'clerk', 0) }
    await must(tokens.clerk, '/session', {
      body: { name: 'Conseil communautaire de la Vallée', kind: 'epci', profile: 'fr-epci-visio' },
      title: 'Séance du 5 mars', chair: 1, rosterCsv: exampleRoster(5)
    })
    // Anne (presiding), Bruno and Chloé in the chamber: 3 of 5, and David from home makes 4.
    for (const seat of [1, 2, 3]) await must(tokens.clerk, '/attendance/arrival', { seat, place: 'chamber' })
    await must(tokens.chair, '/items', { id: '1', title: 'Tarifs de l’eau' })
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
  })

  it('the clerk records the answer of a member in the chamber, not that of a remote member', async () => {
    // Cameras and microphones off: the subject is the vote, and two cores serve three pages.
    const off = { camera: false, mic: false }
    ;[p.chair, p.clerk, p.david] = await Promise.all([
      joinThroughUI(browser, server.baseURL, { name: 'Anne Morel', room, role: 'chair', seat: 1, ...off }),
      joinThroughUI(browser, server.baseURL, { name: 'Hugo Bernard', room, role: 'clerk', ...off }),
      joinThroughUI(browser, server.baseURL, { name: 'David Roussel', room, role: 'member', seat: 4, ...off })
    ])
    await waitFor('David connected', async () => {
      const state = (await api(server.baseURL, 'GET', `/api/rooms/${room}/state`, tokens.clerk)).data
      const presence = state.seats?.find((s) => s.seat === 4)?.presence
      return { ok: presence === 'remote-unverified', state: presence }
    }, { timeoutMs: 30000, intervalMs: 200 })
    await must(tokens.clerk, '/attendance/verify', { seat: 4 })
    await must(tokens.chair, '/items/1/open')

    const vote = region(p.chair, 'Vote')
    await vote.getByLabel('Question posée').fill('Adopter les tarifs de l’eau')
    await vote.getByLabel('Mode de scrutin').selectOption('electronic')
    await vote.getByRole('button', { name: 'Ouvrir le vote' }).click()
    await textOf(vote, /Vote 1-1 : Adopter les tarifs de l’eau \(scrutin électronique\)/)

    // The clerk's console lists the members in the chamber, each with the three answers, and
    // names the one at home as voting himself: there is nothing to record for him.
    const clerkVote = region(p.clerk, 'Vote')
    await textOf(clerkVote, /Membres en salle sans appareil/)
    for (const who of ['Anne Morel (siège 1)', 'Bruno Lefèvre (siège 2)', 'Chloé Garnier (siège 3)']) {
      const answers = await row(p.clerk, 'Vote', who).getByRole('button').allInnerTexts()
      assert.deepEqual(answers, ['Pour', 'Contre', 'Abstention'], `${who}'s answers`)
    }
    assert.equal(await row(p.clerk, 'Vote', 'David Roussel (siège 4)').count(), 0, 'a remote member\'s ballot is offered to the clerk')
    assert.match(await clerkVote.innerText(), /En attente du vote de : David Roussel \(siège 4\)\./)

    await row(p.clerk, 'Vote', 'Bruno Lefèvre (siège 2)').getByRole('button', { name: 'Pour', exact: true }).click()
    await row(p.clerk, 'Vote', 'Bruno Lefèvre (siège 2)').waitFor({ state: 'detached' })
    await row(p.chair, 'Vote', 'Anne Morel (siège 1)').getByRole('button', { name: 'Pour', exact: true }).click()
    await row(p.chair, 'Vote', 'Anne Morel (siège 1)').waitFor({ state: 'detached' })
    await textOf(vote, /2 bulletins, 2 en attente/)

    // The ballots list says which was recorded, and by whom.
    const cast = vote.locator('details.ballots-cast')
    await waitFor('the ballots listed', async () => {
      const text = await cast.textContent()
      return { ok: /Bruno Lefèvre \(siège 2\) : Pour \(enregistré par le secrétariat\)/.test(text) && /Anne Morel \(siège 1\) : Pour(?! \(enregistré)/.test(text), state: text }
    }, { timeoutMs: 15000, intervalMs: 200 })
    const state = (await api(server.baseURL, 'GET', `/api/rooms/${room}/state`, tokens.chair)).data
    const bruno = state.votes[0].ballots.find((b) => b.seat === 2)
    assert.equal(bruno.keyed, true)
    assert.equal(bruno.recordedBy.role, 'clerk')
  })

  it('closing names the member who has not voted; the chair confirms, and the result and the minutes list her', async () => {
    const { page } = p.chair
    const vote = region(p.chair, 'Vote')
    const closeButton = vote.getByRole('button', { name: 'Clore le vote et proclamer le résultat' })
    await closeButton.click()
    const dialog = page.getByRole('dialog', { name: 'Clore le vote sans ces membres ?' })
    await dialog.waitFor()
    assert.deepEqual(await dialog.locator('.non-voters li').allInnerTexts(), ['Chloé Garnier (siège 3)', 'David Roussel (siège 4)'])
    assert.match(await dialog.innerText(), /Ces membres présents ou représentés n’ont pas voté/)
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Revenir au vote', 'focus is not on the safe choice')
    assert.deepEqual(await axeSerious(page, 'dialog'), [])
    await page.screenshot({ path: path.join(artifactsDir, 'chamber-vote-dialog.png') })

    // Escape goes back to the vote, which stays open, the focus on the close button again.
    await page.keyboard.press('Escape')
    await dialog.waitFor({ state: 'hidden' })
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.key), 'close-vote')
    assert.equal((await api(server.baseURL, 'GET', `/api/rooms/${room}/state`, tokens.chair)).data.openVote, '1-1')

    // David votes from home while the dialog is open again: it names only Chloé then.
    await closeButton.click()
    await dialog.waitFor()
    const ballot = region(p.david, 'Vote').getByRole('group', { name: 'Votre vote' })
    await ballot.getByLabel('Contre', { exact: true }).check()
    await ballot.getByRole('button', { name: 'Voter' }).click()
    await textOf(region(p.david, 'Vote'), /Votre vote : Contre \(enregistré, définitif\)/)
    await waitFor('the dialog to drop David', async () => {
      const names = await dialog.locator('.non-voters li').allInnerTexts()
      return { ok: names.length === 1 && names[0] === 'Chloé Garnier (siège 3)', state: names }
    }, { timeoutMs: 15000, intervalMs: 100 })
    await dialog.getByRole('button', { name: 'Clore le vote sans eux' }).click()
    await dialog.waitFor({ state: 'hidden' })
    for (const viewer of [p.chair, p.clerk, p.david]) {
      const result = region(viewer, 'Résultat')
      await textOf(result, /Vote 1-1 : adopté/, `${viewer.name} to show the result`)
      const text = await result.innerText()
      assert.match(text, /Pour : 2 · Contre : 1 · Abstentions : 0/)
      assert.match(text, /N’ont pas pris part au vote : Chloé Garnier/)
    }

    const res = await fetch(`${server.baseURL}/api/rooms/${room}/minutes?format=md&lang=fr`, { headers: { Authorization: `Bearer ${tokens.clerk}`, Accept: 'text/markdown' } })
    assert.equal(res.status, 200)
    const md = await res.text()
    assert.match(md, /\*\*Pour \(2\)\*\* : Anne Morel, Bruno Lefèvre/)
    assert.match(md, /\*\*Contre \(1\)\*\* : David Roussel/)
    assert.match(md, /\*\*N'ont pas pris part au vote \(1\)\*\* : Chloé Garnier/)
    assert.match(md, /\*\*Bulletins enregistrés en salle par .+ \(secrétariat de séance\)\*\* : Bruno Lefèvre\n/)

    for (const who of Object.values(p)) {
      assert.deepEqual(who.errors, [], `${who.name}'s page threw`)
      assert.deepEqual(who.foreignRequests(server.baseURL), [], `${who.name}'s page reached another origin`)
    }
  })
})
