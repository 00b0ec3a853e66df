// End-to-end: a whole short sitting through the deliberation screens, in Chromium, against a real
// `hemicycle --dev`. The chair, the clerk and two members at home each use their own page and only
// the UI (labels, buttons, regions); what is asserted is what the pages show and what the server
// records (the minutes downloaded at the end), plus the floor rule on real media.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import {
  startServer, launchBrowser, joinThroughUI, expectMediaFrom, waitFor, ensureArtifactsDir, artifactsDir, exampleRoster
} from './harness.mjs'

const axeSource = await readFile(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8')

// The roster of docs/example-roster.csv: seven members in office, so the quorum is 4.
const roster = exampleRoster()

// axe-core through the DevTools protocol (the CSP refuses inline scripts), WCAG 2.1 A/AA rules,
// limited to the deliberation panel so that the verdict is about these screens.
async function axeOn (page, selector) {
  await page.evaluate(axeSource)
  return page.evaluate((sel) => window.axe.run(sel, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] }
  }), selector)
}

function serious (results) {
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)
}

async function announcements (page) {
  return (await page.evaluate(() => window.__hemicycleProbe.announced())).join('\n')
}

const panel = (p) => p.page.locator('#council-panel')
const region = (p, name) => panel(p).getByRole('region', { name, exact: true })
const row = (p, regionName, who) => region(p, regionName).getByRole('group', { name: who, exact: true })

// textOf waits until a locator's text matches, and returns it.
async function textOf (locator, pattern, what) {
  let last = ''
  await waitFor(what || `text ${pattern}`, async () => {
    last = await locator.innerText().catch(() => '')
    return { ok: pattern.test(last), state: last }
  }, { timeoutMs: 30000, intervalMs: 200 })
  return last
}

// tabTo presses Tab until the focused element is what want describes ({ type } of an input, or a
// button's { text }), and checks that the focus is visibly outlined there.
async function tabTo (page, want, max = 30) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab')
    const hit = await page.evaluate((w) => {
      const el = document.activeElement
      if (!el || (w.type && el.type !== w.type) || (w.text && el.textContent !== w.text)) return null
      const style = getComputedStyle(el)
      return { visible: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2 }
    }, want)
    if (hit) {
      assert.ok(hit.visible, `no visible focus on ${JSON.stringify(want)}`)
      return
    }
  }
  throw new Error(`${JSON.stringify(want)} was not reached with ${max} presses of Tab`)
}

// pressed waits for a toggle's aria-pressed to settle on a value.
function pressed (locator, value) {
  return waitFor(`aria-pressed=${value}`, async () => (await locator.getAttribute('aria-pressed')) === value, { timeoutMs: 15000, intervalMs: 100 })
}

describe('a whole sitting through the deliberation screens', { timeout: 420000 }, () => {
  const room = `conseil-${randomBytes(3).toString('hex')}`
  let server
  let browser
  const p = {} // chair, david, emma, clerk

  before(async () => {
    await ensureArtifactsDir()
    server = await startServer({ logName: 'server-council.log' })
    browser = await launchBrowser()
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
  })

  it('the chair opens the sitting from the console; a bad roster is refused with its line', async () => {
    p.chair = await joinThroughUI(browser, server.baseURL, { name: 'Anne Morel', room, role: 'chair', seat: 1 })
    const open = region(p.chair, 'Ouvrir la séance')
    await open.getByLabel('Nom de l’assemblée').fill('Conseil communautaire de la Vallée')
    await open.getByLabel('Nature de l’assemblée').selectOption('epci')
    await open.getByLabel('Règles applicables').selectOption('fr-epci-visio')
    await open.getByLabel('Intitulé de la séance').fill('Séance du 5 mars')
    assert.equal(await open.getByLabel('Siège de la présidence').inputValue(), '1', 'the chair\'s seat comes from the invitation')
    // Seat 2 twice: the server names the line, and the console shows it as it is.
    await open.getByLabel('Liste des membres (CSV)').fill(`${roster}2,Bruno Bis,,\n`)
    await open.getByRole('button', { name: 'Ouvrir la séance' }).click()
    await textOf(open.getByRole('alert'), /Refusé : rosterCsv: ligne 9 : le siège "?2"? figure deux fois/, 'the roster refusal, in the console\'s French')

    // The clerk's file, loaded instead of pasted.
    await open.getByLabel('Ou charger le fichier CSV').setInputFiles({ name: 'conseillers.csv', mimeType: 'text/csv', buffer: Buffer.from(roster) })
    await waitFor('the file in the text area', async () => (await open.getByLabel('Liste des membres (CSV)').inputValue()) === roster)
    await open.getByRole('button', { name: 'Ouvrir la séance' }).click()

    const quorum = region(p.chair, 'Quorum')
    await textOf(quorum, /Quorum non atteint/)
    assert.match(await quorum.innerText(), /0 comptés sur 4 requis \(7 au total\)/)
    assert.match(await panel(p.chair).innerText(), /Conseil communautaire de la Vallée/)
  })

  it('two members join from home and are recorded remote, awaiting verification', async () => {
    [p.david, p.emma] = await Promise.all([
      joinThroughUI(browser, server.baseURL, { name: 'David Roussel', room, role: 'member', seat: 4 }),
      joinThroughUI(browser, server.baseURL, { name: 'Emma Faure', room, role: 'member', seat: 5 })
    ])
    for (const m of [p.david, p.emma]) {
      await textOf(region(m, 'Votre siège'), /À distance, identité à vérifier/)
      assert.match(await region(m, 'Votre siège').innerText(), /Le secrétariat doit vérifier votre identité/)
    }
    await textOf(region(p.chair, 'Quorum'), /À distance, en attente de vérification : 2 \(non comptés\)/)
  })

  it('the clerk records the chamber; the chair cannot open an item without the quorum', async () => {
    p.clerk = await joinThroughUI(browser, server.baseURL, { name: 'Hugo Bernard', room, role: 'clerk', camera: false, mic: false })
    for (const who of ['Anne Morel (siège 1)', 'Bruno Lefèvre (siège 2)', 'Chloé Garnier (siège 3)']) {
      await row(p.clerk, 'Appel', who).getByRole('button', { name: 'En salle' }).click()
      await textOf(row(p.clerk, 'Appel', who), /Présent·e en salle depuis/)
      // The button is gone; focus stays on the seat's line, not on another action.
      assert.equal(await p.clerk.page.evaluate(() => document.activeElement?.getAttribute('aria-label')), who)
    }
    await textOf(region(p.chair, 'Quorum'), /3 comptés sur 4 requis/)

    // The chair adds the item and tries to open it: refused, with the server's figures.
    await panel(p.chair).getByText('Ajouter un point à l’ordre du jour').click()
    await panel(p.chair).getByLabel('Intitulé', { exact: true }).fill('Budget annexe du service des eaux')
    await panel(p.chair).getByRole('button', { name: 'Ajouter le point' }).click()
    const item = row(p.chair, 'Ordre du jour', 'Point 1 : Budget annexe du service des eaux')
    await item.getByRole('button', { name: 'Ouvrir' }).click()
    await textOf(region(p.chair, 'Ordre du jour').getByRole('alert'),
      /Refusé : item "1" cannot open: quorum not reached: 3 present, 4 required of 7 in office \(2 remote awaiting verification\)/)
  })

  it('roll call: the clerk verifies the remote members and the gauge shows the quorum', async () => {
    assert.match(await region(p.clerk, 'Appel').innerText(), /Identité à vérifier \(à la caméra\) : David Roussel \(siège 4\), Emma Faure \(siège 5\)/)
    for (const who of ['David Roussel (siège 4)', 'Emma Faure (siège 5)']) {
      await row(p.clerk, 'Appel', who).getByRole('button', { name: 'Confirmer l’identité' }).click()
      await textOf(row(p.clerk, 'Appel', who), /À distance, identité vérifiée/)
    }
    const quorum = region(p.chair, 'Quorum')
    await textOf(quorum, /Quorum atteint/)
    assert.match(await quorum.innerText(), /5 comptés sur 4 requis/)
    assert.equal(await quorum.locator('meter').evaluate((m) => m.value), 5)
    await textOf(region(p.david, 'Votre siège'), /À distance, identité vérifiée/)
    assert.match(await announcements(p.david.page), /Votre identité a été vérifiée/)

    // François gave Bruno a written proxy.
    const proxies = region(p.clerk, 'Pouvoirs')
    await proxies.getByLabel('Membre absent qui donne pouvoir').selectOption({ label: 'François Perrin (siège 6)' })
    await proxies.getByLabel('Membre présent qui le reçoit').selectOption({ label: 'Bruno Lefèvre (siège 2)' })
    await proxies.getByRole('button', { name: 'Enregistrer le pouvoir' }).click()
    await textOf(proxies, /François Perrin \(siège 6\) a donné pouvoir à Bruno Lefèvre \(siège 2\)/)
    await textOf(row(p.clerk, 'Appel', 'François Perrin (siège 6)'), /représenté·e par Bruno Lefèvre/)

    await row(p.chair, 'Ordre du jour', 'Point 1 : Budget annexe du service des eaux').getByRole('button', { name: 'Ouvrir' }).click()
    await textOf(row(p.chair, 'Ordre du jour', 'Point 1 : Budget annexe du service des eaux'), /en discussion depuis/)
    await textOf(region(p.emma, 'Votre siège'), /Point en discussion : Budget annexe du service des eaux/)
  })

  it('floor control: a member without the floor cannot unmute and is told why; given the floor, is heard', async () => {
    const { chair, david, emma } = p
    const davidId = await david.identity
    const mic = david.page.locator('.controls [data-control="mic"]')
    await pressed(mic, 'true')

    // Before any floor control, the chair closes Emma's microphone from the console.
    await pressed(emma.control('mic'), 'true')
    await row(chair, 'Micros ouverts', 'Emma Faure').getByRole('button', { name: 'Couper le micro' }).click()
    await pressed(emma.control('mic'), 'false')
    await waitFor('Emma to be told', async () => /Votre micro a été coupé par la présidence/.test(await announcements(emma.page)))
    await row(chair, 'Micros ouverts', 'Emma Faure').waitFor({ state: 'detached' })
    assert.match(await region(chair, 'Micros ouverts').innerText(), /David Roussel/)

    const control = region(chair, 'Parole').getByRole('button', { name: 'Régulation de la parole' })
    await control.click()
    await pressed(control, 'true')
    // The server closes David's microphone; his page follows and says why.
    await pressed(mic, 'false')
    await textOf(region(david, 'Parole'), /La présidence régule la parole/)
    assert.ok(await david.page.locator('.floor-note').isVisible(), 'the note beside the microphone button is missing')
    await waitFor('the chair to see David muted', async () => (await chair.tile(davidId).getAttribute('data-mic')) === 'off')

    // An attempt to unmute is refused by the server, and the page shows its reason.
    await mic.click()
    const banner = david.page.locator('.banner.error')
    await textOf(banner, /Votre micro reste coupé : la présidence régule la parole\..*floor control is on/)
    await pressed(mic, 'false')
    assert.equal(await chair.tile(davidId).getAttribute('data-mic'), 'off', 'the chair saw the refused microphone open')

    // David asks for the floor; the chair gives it; he opens his microphone and is heard.
    await region(david, 'Parole').getByRole('button', { name: 'Demander la parole' }).click()
    await textOf(region(david, 'Parole'), /n° 1 dans la file/)
    await row(chair, 'Parole', 'David Roussel (siège 4)').getByRole('button', { name: 'Donner la parole' }).click()
    await textOf(region(david, 'Parole'), /Vous avez la parole\./)
    await region(david, 'Parole').getByRole('button', { name: 'Ouvrir mon micro' }).click()
    await pressed(mic, 'true')
    await textOf(region(david, 'Parole'), /Votre micro est ouvert/)
    await expectMediaFrom(chair, [davidId], { video: false, timeoutMs: 30000 })
    assert.match(await announcements(david.page), /Vous avez la parole\./)

    // Withdrawn: the server closes the microphone again.
    await region(chair, 'Parole').getByRole('button', { name: 'Retirer la parole' }).click()
    await pressed(mic, 'false')
    await textOf(region(chair, 'Parole'), /Personne n’a la parole/)
    await control.click()
    await pressed(control, 'false')
  })

  it('a roll-call vote: the members vote in their panels, the chair records the chamber, everyone sees the result', async () => {
    const { chair, david, emma, clerk } = p
    const vote = region(chair, 'Vote')
    await vote.getByLabel('Question posée').fill('Adopter la décision modificative n° 1')
    // A show of hands is not allowed with members at home under this profile: the reason shows.
    await vote.getByLabel('Mode de scrutin').selectOption('show-of-hands')
    await vote.getByRole('button', { name: 'Ouvrir le vote' }).click()
    await textOf(vote.getByRole('alert'), /Refusé : show-of-hands vote refused: remote members take part \(seats 4, 5\)/)
    await vote.getByLabel('Mode de scrutin').selectOption('roll-call')
    await vote.getByRole('button', { name: 'Ouvrir le vote' }).click()
    await textOf(vote, /Vote 1-1 : Adopter la décision modificative n° 1 \(appel nominal\)/)

    // The members at home vote from their panels.
    // David votes with the mouse.
    const ballot = region(david, 'Vote').getByRole('group', { name: 'Votre vote' })
    await ballot.getByLabel('Pour', { exact: true }).check()
    await ballot.getByRole('button', { name: 'Voter' }).click()
    await textOf(region(david, 'Vote'), /Votre vote : Pour \(enregistré, définitif\)/)
    // Emma with the keyboard only: Tab into the choices, arrow to "Contre", Tab to Voter, Enter.
    await region(emma, 'Vote').getByRole('group', { name: 'Votre vote' }).waitFor()
    await region(emma, 'Parole').getByRole('button', { name: 'Demander la parole' }).focus()
    await tabTo(emma.page, { type: 'radio' })
    await emma.page.keyboard.press('ArrowDown')
    await tabTo(emma.page, { text: 'Voter' })
    await emma.page.keyboard.press('Enter')
    await textOf(region(emma, 'Vote'), /Votre vote : Contre \(enregistré, définitif\)/)
    assert.equal(await emma.page.evaluate(() => document.activeElement?.textContent), 'Vote', 'focus did not land on the vote\'s heading')
    const axeMember = await axeOn(david.page, '#council-panel')

    // The chair records the answers called out in the chamber, Bruno's proxy for François included.
    await textOf(vote, /2 bulletins, 4 en attente/)
    assert.match(await row(chair, 'Vote', 'François Perrin (siège 6)').innerText(), /vote de Bruno Lefèvre \(siège 2\), par pouvoir/)
    const axeChair = await axeOn(chair.page, '#council-panel')
    for (const [who, choice] of [['Anne Morel (siège 1)', 'Pour'], ['Bruno Lefèvre (siège 2)', 'Pour'], ['Chloé Garnier (siège 3)', 'Abstention'], ['François Perrin (siège 6)', 'Pour']]) {
      await row(chair, 'Vote', who).getByRole('button', { name: choice, exact: true }).click()
      await row(chair, 'Vote', who).waitFor({ state: 'detached' })
    }
    await textOf(vote, /6 bulletins, 0 en attente/)
    await vote.getByRole('button', { name: 'Clore le vote et proclamer le résultat' }).click()

    for (const viewer of [chair, david, emma, clerk]) {
      const result = region(viewer, 'Résultat')
      await textOf(result, /Vote 1-1 : adopté/, `${viewer.name} to show the result`)
      const text = await result.innerText()
      assert.match(text, /Pour : 4 · Contre : 1 · Abstentions : 1 · Ne prennent pas part : 0 · Blancs : 0 · Suffrages exprimés : 5 · Majorité requise : 3/)
      assert.match(text, /Pour : Anne Morel, Bruno Lefèvre, David Roussel, François Perrin/)
      assert.match(text, /Contre : Emma Faure/)
    }
    assert.match(await announcements(emma.page), /Vote 1-1 adopté : 4 pour, 1 contre, 1 abstentions\./)

    await writeFile(path.join(artifactsDir, 'axe-council.json'), JSON.stringify({ chair: axeChair.violations, member: axeMember.violations }, null, 2))
    assert.deepEqual(serious(axeChair), [], 'chair\'s console')
    assert.deepEqual(serious(axeMember), [], 'member\'s panel')

    // The console with the quorum and the result, for the record (the agenda form folded).
    const addItem = panel(chair).getByText('Ajouter un point à l’ordre du jour')
    await addItem.click()
    await chair.page.setViewportSize({ width: 1280, height: 1500 })
    await chair.page.locator('.side').evaluate((el) => { el.scrollTop = 0 })
    await chair.page.screenshot({ path: path.join(artifactsDir, 'council.png') })
    await chair.page.setViewportSize({ width: 1280, height: 800 })
    await addItem.click()
  })

  it('a secret ballot in the chamber: the members at home leave, the clerk records the tellers\' count', async () => {
    const { chair, clerk, david } = p
    const agenda = region(chair, 'Ordre du jour')
    await row(chair, 'Ordre du jour', 'Point 1 : Budget annexe du service des eaux').getByRole('button', { name: 'Clore' }).click()
    await textOf(row(chair, 'Ordre du jour', 'Point 1 : Budget annexe du service des eaux'), /clos à/)
    for (const title of ['Tarifs de la piscine', 'Motion sur la ligne de bus']) {
      await panel(chair).getByLabel('Intitulé', { exact: true }).fill(title)
      await panel(chair).getByRole('button', { name: 'Ajouter le point' }).click()
      await row(chair, 'Ordre du jour', `Point ${title.startsWith('Tarifs') ? 2 : 3} : ${title}`).waitFor()
    }
    // Postponed, with its reason.
    await row(chair, 'Ordre du jour', 'Point 3 : Motion sur la ligne de bus').getByRole('button', { name: 'Reporter' }).click()
    assert.equal(await chair.page.evaluate(() => document.activeElement?.name), 'postpone-reason', 'focus did not move to the reason')
    await agenda.getByLabel('Motif du report').fill('documents reçus trop tard')
    await agenda.getByRole('button', { name: 'Reporter le point' }).click()
    await textOf(row(chair, 'Ordre du jour', 'Point 3 : Motion sur la ligne de bus'), /reporté : documents reçus trop tard/)

    for (const who of ['David Roussel (siège 4)', 'Emma Faure (siège 5)']) {
      await row(clerk, 'Appel', who).getByRole('button', { name: 'Départ' }).click()
      await textOf(row(clerk, 'Appel', who), /Absent·e/)
    }
    await textOf(region(david, 'Votre siège'), /Absent·e/)
    // Three in the chamber is no quorum; Gaëlle arrives late and makes it.
    await textOf(region(chair, 'Quorum'), /Quorum non atteint/)
    await row(clerk, 'Appel', 'Gaëlle Henry (siège 7)').getByRole('button', { name: 'En salle' }).click()
    await textOf(region(chair, 'Quorum'), /Quorum atteint[\s\S]*4 comptés sur 4 requis/)
    await row(chair, 'Ordre du jour', 'Point 2 : Tarifs de la piscine').getByRole('button', { name: 'Ouvrir' }).click()
    await textOf(row(chair, 'Ordre du jour', 'Point 2 : Tarifs de la piscine'), /en discussion depuis/)
    await agenda.getByText('Demande de scrutin secret').click()
    await agenda.getByLabel('Nombre de membres présents qui le demandent').fill('2')
    await agenda.getByRole('button', { name: 'Enregistrer la demande' }).click()
    const vote = region(chair, 'Vote')
    await vote.getByLabel('Question posée').fill('Adopter les tarifs')
    await vote.getByLabel('Mode de scrutin').selectOption('secret')
    await vote.getByRole('button', { name: 'Ouvrir le vote' }).click()
    await textOf(vote, /Vote 2-1 : Adopter les tarifs \(scrutin secret\)[\s\S]*le secrétariat enregistre le dépouillement/)
    await textOf(region(david, 'Vote'), /Scrutin secret : votez à bulletin papier dans la salle/)

    const tally = region(clerk, 'Vote')
    await tally.getByLabel('Bulletins pour').fill('3')
    await tally.getByLabel('Bulletins contre').fill('1')
    await tally.getByRole('button', { name: 'Enregistrer le dépouillement' }).click()
    await textOf(vote, /Dépouillement : pour 3, contre 1, blancs ou nuls 0\./)
    await vote.getByRole('button', { name: 'Clore le vote et proclamer le résultat' }).click()
    for (const viewer of [chair, clerk, david]) {
      await textOf(region(viewer, 'Résultat'), /Vote 2-1 : adopté[\s\S]*Pour : 3 · Contre : 1/, `${viewer.name} to show the secret ballot's result`)
    }
    assert.doesNotMatch(await region(chair, 'Résultat').innerText(), /Pour : Anne Morel/, 'a secret ballot shows names')
  })

  it('the sitting closes and the clerk downloads the minutes with the names', async () => {
    const { chair, clerk } = p
    await row(chair, 'Ordre du jour', 'Point 2 : Tarifs de la piscine').getByRole('button', { name: 'Clore' }).click()
    await textOf(row(chair, 'Ordre du jour', 'Point 2 : Tarifs de la piscine'), /clos à/)
    await region(chair, 'Séance').getByRole('button', { name: 'Clore la séance' }).click()
    assert.equal(await chair.page.evaluate(() => document.activeElement?.textContent), 'Confirmer la clôture')
    await region(chair, 'Séance').getByRole('button', { name: 'Confirmer la clôture' }).click()
    await textOf(region(chair, 'Séance'), /Séance close à/)
    await waitFor('David\'s floor buttons to go once the sitting is closed', async () =>
      (await region(p.david, 'Parole').getByRole('button').count()) === 0)

    const minutes = region(clerk, 'Procès-verbal')
    const fetchMinutes = async (label) => {
      const [download] = await Promise.all([clerk.page.waitForEvent('download'), minutes.getByRole('button', { name: label }).click()])
      return { name: download.suggestedFilename(), text: await readFile(await download.path(), 'utf8') }
    }
    const md = await fetchMinutes('Télécharger (Markdown)')
    assert.equal(md.name, `proces-verbal-${room}.md`)
    assert.match(md.text, /^# Procès-verbal — Conseil communautaire de la Vallée/)
    for (const line of [
      /## Présents dans la salle \(4\)[\s\S]*Anne Morel[\s\S]*Bruno Lefèvre[\s\S]*Chloé Garnier[\s\S]*Gaëlle Henry/,
      /## Présents à distance \(2\)[\s\S]*David Roussel .*identité vérifiée[\s\S]*Emma Faure .*identité vérifiée/,
      /François Perrin a donné pouvoir à Bruno Lefèvre/,
      /### Point 2 — Tarifs de la piscine[\s\S]*\*\*Scrutin secret\*\* : demandé par 2 des 4 membres présents[\s\S]*\*\*Adopté — Pour : 3, Contre : 1, Blancs ou nuls : 0/,
      /### Point 3 — Motion sur la ligne de bus\n\n- \*\*Ajourné\*\* : documents reçus trop tard/,
      /\*\*Pour \(4\)\*\* : Anne Morel, Bruno Lefèvre, David Roussel, François Perrin/,
      /\*\*Contre \(1\)\*\* : Emma Faure/,
      /David Roussel : 1 intervention/
    ]) assert.match(md.text, line)

    const html = await fetchMinutes('Télécharger (HTML, à imprimer)')
    assert.equal(html.name, `proces-verbal-${room}.html`)
    assert.match(html.text, /<html[\s\S]*Emma Faure[\s\S]*<\/html>/)

    for (const who of Object.values(p)) {
      assert.deepEqual(who.errors, [], `${who.name}'s page threw`)
      assert.deepEqual(who.foreignRequests(server.baseURL), [], `${who.name}'s page reached another origin`)
    }
  })
})
