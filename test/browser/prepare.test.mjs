// End-to-end: a sitting prepared without a developer. The clerk, in Chromium on /prepare,
// creates the body, imports its roster from a CSV file, prepares a sitting with its agenda and
// sends the convocation; the server mails the invitations to an SMTP server this test runs on
// loopback (smtp-server), the test reads them as a mail client would (mailparser) and the
// members follow their links into the sitting's room. The clerk then sees who received, opened
// and used their link, revokes one, and the revoked link is refused in the member's language.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { promisify } from 'node:util'
import { SMTPServer } from 'smtp-server'
import { simpleParser } from 'mailparser'
import {
  startServer, launchBrowser, openClient, enterFromLobby, waitFor, textOf, ensureArtifactsDir, exampleRoster, axeSerious
} from './harness.mjs'

const execFileP = promisify(execFile)

// startMailSink runs an SMTP server on a free loopback port that keeps every message it is
// given, parsed (MIME parts, quoted-printable and base64 decoded).
async function startMailSink () {
  const messages = []
  const failures = []
  const sink = new SMTPServer({
    // The server is configured with tls: none, as for a relay on the town's own network.
    disabledCommands: ['STARTTLS', 'AUTH'],
    authOptional: true,
    logger: false,
    onData (stream, session, callback) {
      simpleParser(stream).then((mail) => {
        messages.push({ to: session.envelope.rcptTo.map((r) => r.address), mail })
        callback()
      }, (err) => {
        failures.push(String(err))
        callback(err)
      })
    }
  })
  await new Promise((resolve, reject) => {
    sink.once('error', reject)
    sink.listen(0, '127.0.0.1', resolve)
  })
  return {
    addr: `127.0.0.1:${sink.server.address().port}`,
    messages,
    failures,
    close: () => new Promise((resolve) => sink.close(resolve))
  }
}

// wallClock is an instant's date and time on the clocks of Paris, as the clerk types them.
function wallClock (ms) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Europe/Paris', hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit'
  }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]))
  return { date: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}` }
}

const bodyID = 'vallee'
const noteBytes = Buffer.from('%PDF-1.4\n% note de synthèse : budget annexe du service des eaux\n')
const noteHash = createHash('sha256').update(noteBytes).digest('hex')
// The example roster, with the e-mail addresses of the chair and of two members, who all sit
// from home.
const emails = { 1: 'anne.morel@vallee.example', 4: 'david.roussel@vallee.example', 5: 'emma.faure@vallee.example' }
const rosterCsv = exampleRoster().trimEnd().split('\n')
  .map((line, i) => (i === 0 ? `${line},email` : `${line},${emails[line.split(',')[0]] || ''}`))
  .join('\n') + '\n'

describe('the clerk prepares a sitting on /prepare; members follow the e-mailed links', { timeout: 300000 }, () => {
  let sink
  let server
  let browser
  let clerk
  let clerkToken
  const links = {} // seat → the link of the mail it got
  const members = {}
  // The sitting opens in ten minutes, so its members may already join (from 30 minutes
  // before), and its convocation is necessarily late.
  const start = wallClock(Date.now() + 10 * 60000)
  const room = `${bodyID}-${start.date}`
  const section = (name) => clerk.page.getByRole('region', { name, exact: true })

  before(async () => {
    await ensureArtifactsDir()
    sink = await startMailSink()
    server = await startServer({
      logName: 'server-prepare.log',
      config: `smtp:\n  addr: "${sink.addr}"\n  from: "Communauté de la Vallée <greffe@vallee.example>"\n  tls: none\n`
    })
    browser = await launchBrowser()
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
    await sink?.close()
  })

  it('the clerk signs in with the body\'s token and creates the body', async () => {
    // As the README says: the clerk's token comes from `hemicycle token --body …`.
    const { stdout } = await execFileP(server.bin, ['token', '--body', bodyID, '--identity', 'greffe', '--name', 'Secrétariat de la Vallée', '--role', 'clerk'])
    clerkToken = stdout.trim()
    clerk = await openClient(browser, server.baseURL, { name: 'clerk', address: '/prepare' })
    const { page } = clerk
    await page.getByLabel('Lien ou jeton du secrétariat').fill(clerkToken)
    await page.getByRole('button', { name: 'Continuer' }).click()
    await page.getByRole('heading', { level: 1, name: 'Préparer les séances' }).waitFor()
    assert.match(await page.locator('main').innerText(), /Secrétariat de la Vallée, secrétariat de l’assemblée « vallee »/)

    const body = section('1. L’assemblée')
    await textOf(body, /Cette assemblée n’existe pas encore/)
    await body.getByLabel('Nom de l’assemblée').fill('Conseil communautaire de la Vallée')
    await body.getByLabel('Nature de l’assemblée').selectOption('epci')
    await body.getByLabel('Règles applicables').selectOption('fr-epci-visio')
    assert.equal(await body.getByLabel('Fuseau horaire').inputValue(), 'Europe/Paris')
    await body.getByRole('button', { name: 'Enregistrer l’assemblée' }).click()
    await textOf(body.getByRole('status'), /Assemblée enregistrée : Conseil communautaire de la Vallée\./)
  })

  it('a roster with a wrong line is refused with its number; the right file is imported', async () => {
    const roster = section('2. La liste des membres')
    const file = roster.getByLabel('Fichier CSV de la liste des membres')
    await file.setInputFiles({ name: 'membres.csv', mimeType: 'text/csv', buffer: Buffer.from(`${rosterCsv}2,Bruno Bis,,,\n`) })
    await roster.getByRole('button', { name: 'Importer la liste' }).click()
    await textOf(roster.getByRole('alert'), /^ligne 9 : le siège "2" figure deux fois \(déjà ligne 3\)$/, 'the refused line, in French')
    assert.equal(await file.getAttribute('aria-invalid'), 'true')

    await file.setInputFiles({ name: 'membres.csv', mimeType: 'text/csv', buffer: Buffer.from(rosterCsv) })
    await roster.getByRole('button', { name: 'Importer la liste' }).click()
    await textOf(roster.getByRole('status'), /Liste importée : 7 sièges, 7 membres en exercice\./)
    assert.equal(await roster.locator('.form-status').textContent(), '', 'the earlier refusal is still shown')
    const table = await roster.getByRole('table').innerText()
    assert.match(table, /Membres en exercice : 7 sur 7 sièges/)
    assert.match(table, /4\s+David Roussel\s+Agir ensemble/)
  })

  it('the sitting is prepared with two items; its late convocation is warned about', async () => {
    const sitting = section('3. La séance')
    await sitting.getByLabel('Intitulé de la séance').fill('Séance ordinaire')
    await sitting.getByLabel('Date').fill(start.date)
    await sitting.getByLabel('Heure d’ouverture').fill(start.time)
    assert.equal(await sitting.getByLabel('Identifiant de la séance').inputValue(), start.date, 'the identifier follows the date')
    assert.equal(await sitting.getByLabel('Salle en ligne').inputValue(), room)
    await sitting.getByLabel('Lieu').fill('Salle du conseil, 1 place de la Mairie')
    await sitting.getByLabel('Présidence').selectOption({ label: 'Siège 1 : Anne Morel' })

    const item1 = sitting.getByRole('group', { name: 'Point 1', exact: true })
    await item1.getByLabel('Intitulé', { exact: true }).fill('Budget annexe du service des eaux')
    await item1.getByLabel('Rapporteur (facultatif)').fill('Bruno Lefèvre')
    await sitting.getByRole('button', { name: 'Ajouter un point' }).click()
    const item2 = sitting.getByRole('group', { name: 'Point 2', exact: true })
    await item2.getByLabel('Intitulé', { exact: true }).fill('Tarifs de la piscine')
    await sitting.getByRole('button', { name: 'Enregistrer la séance' }).click()

    const warning = sitting.locator('.convocation-late')
    const text = await textOf(warning, /convocation tardive : envoyée le .*, elle laisse 0 jour\(s\) franc\(s\) avant la séance, il en faut 5/, 'the late convocation warning')
    assert.equal(await warning.getAttribute('role'), 'alert', text)
    await waitFor('the saved sitting to be the one picked', async () => (await sitting.getByLabel('Séance', { exact: true }).inputValue()) === start.date)

    // The explanatory note of the first item, named by its hash.
    const saved = sitting.getByRole('group', { name: 'Point 1', exact: true })
    await saved.getByLabel('Note de synthèse du point 1 (fichier)').setInputFiles({ name: 'note-budget.pdf', mimeType: 'application/pdf', buffer: noteBytes })
    await saved.getByRole('button', { name: 'Joindre la note' }).click()
    await textOf(saved.getByRole('list', { name: 'Notes du point 1' }), new RegExp(`^note-budget\\.pdf \\(${noteBytes.length} octets, SHA-256 ${noteHash}\\)$`), 'the note attached')
  })

  it('sending the convocation mails each member with an address their own link', async () => {
    const inv = section('4. Convocation et invitations')
    await textOf(inv, /La convocation de « Séance ordinaire » n’est pas encore envoyée/)
    await inv.getByRole('button', { name: 'Envoyer la convocation et les invitations' }).click()
    await textOf(inv.getByRole('status').first(), /7 invité\(s\) : 3 reçue\(s\), 0 ouverte\(s\), 0 utilisée\(s\), 0 révoquée\(s\)\./)
    assert.ok(await inv.getByRole('button', { name: 'Envoyer la convocation et les invitations' }).isDisabled(), 'the convocation can be sent twice')

    await waitFor('three messages in the mail sink', () => sink.messages.length >= 3, { timeoutMs: 30000 })
    assert.deepEqual(sink.failures, [])
    assert.equal(sink.messages.length, 3, 'only the members with an address are mailed')
    for (const [seat, address] of Object.entries(emails)) {
      const got = sink.messages.find((m) => m.to.includes(address))
      assert.ok(got, `nothing mailed to ${address}`)
      const { mail } = got
      assert.match(mail.subject, /^Convocation : Conseil communautaire de la Vallée, séance du /)
      assert.match(mail.text, /Vous êtes convoqué\(e\) à la séance « Séance ordinaire » \(Conseil communautaire de la Vallée\)/)
      assert.match(mail.text, new RegExp(`1\\. Budget annexe du service des eaux \\(rapporteur : Bruno Lefèvre\\)\n   Note : note-budget\\.pdf \\(SHA-256 ${noteHash}\\)\n2\\. Tarifs de la piscine`))
      const ics = mail.attachments.find((a) => a.filename === 'seance.ics')
      assert.ok(ics, 'no calendar file')
      assert.match(ics.content.toString('utf8'), /BEGIN:VEVENT[\s\S]*SUMMARY:Conseil communautaire de la Vallée — Séance ordinaire/)
      // The text part is quoted-printable: the parser decodes "=3D" back to "=".
      const link = mail.text.match(/^(http:\/\/\S+\/\?invitation=[a-z0-9]+)$/m)?.[1]
      assert.ok(link, `no link in the message to ${address}:\n${mail.text}`)
      assert.equal(new URL(link).origin, server.baseURL)
      links[seat] = link
    }
    assert.equal(new Set(Object.values(links)).size, 3, 'two members got the same link')
  })

  it('after sending, an item is withdrawn with its reason and another added, each recorded as such', async () => {
    const sitting = section('3. La séance')
    assert.ok(await sitting.getByLabel('Intitulé de la séance').isDisabled(), 'the sent sitting can still be rewritten')
    await sitting.getByRole('button', { name: 'Retirer ce point : Tarifs de la piscine' }).click()
    await sitting.getByLabel('Motif du retrait du point 2 : Tarifs de la piscine').fill('dossier incomplet')
    await sitting.getByRole('button', { name: 'Retirer le point', exact: true }).click()
    await textOf(sitting.locator('li[data-item="2"]'), /Retiré après l’envoi de la convocation : dossier incomplet/)
    const added = sitting.getByRole('group', { name: 'Nouveau point', exact: true })
    await added.getByLabel('Intitulé', { exact: true }).fill('Vœu pour la gare')
    await sitting.getByRole('button', { name: 'Ajouter ce point à l’ordre du jour' }).click()
    await textOf(sitting.locator('li[data-item="3"]'), /Vœu pour la gare\s+Ajouté après l’envoi de la convocation\./)
    assert.equal(await sitting.getByRole('group', { name: 'Nouveau point', exact: true }).getByLabel('Intitulé', { exact: true }).inputValue(), '', 'the new item\'s form is not emptied')
  })

  it('the chair follows her link and opens the prepared sitting from the console', async () => {
    const chair = await openClient(browser, server.baseURL, { name: 'Anne Morel', address: links[1] })
    await enterFromLobby(chair, { room, camera: false })
    members[1] = chair
    const panel = chair.page.locator('#council-panel')
    const open = panel.getByRole('region', { name: 'Ouvrir la séance', exact: true })
    await textOf(open, /Conseil communautaire de la Vallée : Séance ordinaire, le .+ à \d{1,2}:\d{2}\./, 'the prepared sitting offered')
    await open.getByRole('button', { name: 'Ouvrir la séance préparée « Séance ordinaire »' }).click()
    // The roster and the agenda are the prepared ones, without the withdrawn item.
    await textOf(panel.getByRole('region', { name: 'Quorum', exact: true }), /4 requis \(7 au total\)/)
    const agenda = await textOf(panel.getByRole('region', { name: 'Ordre du jour', exact: true }), /Vœu pour la gare/)
    assert.match(agenda, /Point 1 : Budget annexe du service des eaux[\s\S]*Point 3 : Vœu pour la gare/)
    assert.doesNotMatch(agenda, /Tarifs de la piscine/)
    assert.match(await panel.innerText(), /Conseil communautaire de la Vallée/)
  })

  it('the members follow their links into the room, on their seats', async () => {
    for (const [seat, name] of [[4, 'David Roussel'], [5, 'Emma Faure']]) {
      const p = await openClient(browser, server.baseURL, { name, address: links[seat] })
      // Camera off: three encoders are enough work for the machine and prove nothing more here.
      await enterFromLobby(p, { room, camera: false })
      members[seat] = p
      const mine = p.page.locator('#council-panel').getByRole('region', { name: 'Votre siège', exact: true })
      await textOf(mine, new RegExp(`${name} \\(siège ${seat}\\)[\\s\\S]*À distance, identité à vérifier`), `${name}'s seat`)
      assert.match(await p.page.locator('#council-panel').innerText(), /Conseil communautaire de la Vallée/)
      assert.doesNotMatch(p.page.url(), /invitation=/, 'the code stays in the address bar')
    }
    // The two members are recorded at home, awaiting the clerk's check; the chair's token is a
    // chair's, which the server does not record as present by itself (the clerk does).
    await textOf(members[1].page.locator('#council-panel').getByRole('region', { name: 'Quorum', exact: true }), /À distance, en attente de vérification : 2 \(non comptés\)/)
  })

  it('the clerk sees who received, opened and used their link, and prints one as a QR code', async () => {
    const inv = section('4. Convocation et invitations')
    await inv.getByRole('button', { name: 'Actualiser' }).click()
    await textOf(inv.getByRole('status').first(), /7 invité\(s\) : 3 reçue\(s\), 3 ouverte\(s\), 3 utilisée\(s\), 0 révoquée\(s\)\./)
    const row = inv.getByRole('row', { name: /David Roussel/ })
    const cells = await row.getByRole('cell').allInnerTexts()
    assert.equal(cells[0], '4')
    for (const [i, what] of [[1, 'received'], [2, 'opened'], [3, 'used']]) assert.match(cells[i], /^oui, le /, `${what}: ${cells.join(' | ')}`)
    assert.match(await inv.getByRole('row', { name: /Bruno Lefèvre/ }).innerText(), /pas de courriel connu/)

    await inv.getByRole('button', { name: 'QR code du lien de David Roussel' }).click()
    const qr = inv.getByRole('img', { name: 'QR code du lien d’invitation de David Roussel' })
    await waitFor('the QR code to load', () => qr.evaluate((img) => img.complete && img.naturalWidth === 384))
    // The whole clerk's page, with its four sections filled, passes axe.
    assert.deepEqual(await axeSerious(clerk.page, 'main'), [])
  })

  it('a revoked link is refused, with the reason, in the member\'s language', async () => {
    const inv = section('4. Convocation et invitations')
    await inv.getByRole('button', { name: 'Révoquer le lien de Emma Faure' }).click()
    // Without a reason, nothing is revoked: the page asks for it and stays on the field.
    await inv.getByRole('button', { name: 'Révoquer le lien', exact: true }).click()
    await textOf(inv.getByRole('alert'), /^Indiquez le motif : il est montré à qui suit le lien\.$/)
    assert.equal(await clerk.page.evaluate(() => document.activeElement?.name), 'reason')
    await inv.getByLabel('Motif de la révocation pour Emma Faure (montré à qui suit le lien)').fill('démission reçue le matin même')
    await inv.getByRole('button', { name: 'Révoquer le lien', exact: true }).click()
    await textOf(inv.getByRole('row', { name: /Emma Faure/ }), /révoquée le .* : démission reçue le matin même/)
    await textOf(inv.getByRole('status').first(), /1 révoquée\(s\)\./)
    // Emma was seated with that link: she leaves the room at once, and is told.
    await members[5].page.getByRole('heading', { level: 1, name: 'Vous avez quitté la séance' }).waitFor({ timeout: 30000 })
    assert.match(await members[5].page.getByRole('alert').innerText(), /Vous avez été déconnecté·e de la séance : vous avez été retiré·e de la séance/)

    // The page words the refusal from its catalog with the server's facts (kind, date, reason):
    // the date in the browser's own format, not the server's French sentence ("à 13 h 05").
    for (const [locale, pattern] of [
      ['fr-FR', /^Cette invitation a été révoquée le \S+ \d+ \S+ \d{4} à \d{1,2}:\d{2} par le secrétariat, pour le motif suivant : démission reçue le matin même$/],
      ['en-GB', /^This invitation was revoked on .+ \d{1,2}:\d{2}( [AP]M)? by the clerk’s office, for this reason: démission reçue le matin même$/]
    ]) {
      const again = await openClient(browser, server.baseURL, { name: `revoked ${locale}`, locale, address: links[5] })
      const refusal = again.page.getByRole('alert')
      await textOf(refusal, /\S/, `the refusal in ${locale}`)
      const text = (await refusal.innerText()).trim()
      assert.match(text, pattern)
      assert.doesNotMatch(text, /revoked(?! on)/, 'the server\'s kind is shown raw')
      assert.deepEqual(again.errors, [])
      await again.close()
    }
  })

  it('a link followed the day before shows the sitting and when it opens; the clerk sees it opened', async () => {
    const tomorrow = wallClock(Date.now() + 24 * 3600000).date
    const sitting = section('3. La séance')
    await sitting.getByLabel('Séance', { exact: true }).selectOption({ label: 'Nouvelle séance' })
    assert.equal(await sitting.getByLabel('Intitulé de la séance').inputValue(), '', 'the new sitting\'s form is not blank')
    assert.ok(await sitting.getByRole('button', { name: 'Enregistrer la séance' }).isEnabled(), 'a new sitting cannot be saved')
    await sitting.getByLabel('Intitulé de la séance').fill('Séance extraordinaire')
    await sitting.getByLabel('Date').fill(tomorrow)
    await sitting.getByLabel('Heure d’ouverture').fill('18:30')
    assert.equal(await sitting.getByLabel('Identifiant de la séance').inputValue(), tomorrow)
    await sitting.getByRole('group', { name: 'Point 1', exact: true }).getByLabel('Intitulé', { exact: true }).fill('Motion sur la ligne de bus')
    await sitting.getByRole('button', { name: 'Enregistrer la séance' }).click()
    await textOf(sitting.locator('.convocation-late'), /convocation tardive/)
    const inv = section('4. Convocation et invitations')
    const before = sink.messages.length
    await inv.getByRole('button', { name: 'Envoyer la convocation et les invitations' }).click()
    await textOf(inv.getByRole('status').first(), /7 invité\(s\) : 3 reçue\(s\), 0 ouverte\(s\)/)
    await waitFor('three more messages', () => sink.messages.length >= before + 3, { timeoutMs: 30000 })
    const mail = sink.messages.slice(before).find((m) => m.to.includes(emails[4])).mail
    const link = mail.text.match(/^(http:\/\/\S+\/\?invitation=[a-z0-9]+)$/m)?.[1]
    assert.ok(link && link !== links[4], `no new link for David:\n${mail.text}`)

    const early = await openClient(browser, server.baseURL, { name: 'David, the day before', address: link })
    const card = early.page.getByRole('region', { name: 'Votre convocation' })
    await textOf(card, /Conseil communautaire de la Vallée : Séance extraordinaire/, 'the sitting shown ahead')
    const shown = await card.innerText()
    assert.match(shown, /Vous y siégez : David Roussel, siège 4\./)
    assert.match(shown, /Ordre du jour\s+Motion sur la ligne de bus/)
    assert.match(await card.getByRole('status').innerText(), /^Ce lien vous donnera accès à la séance à partir du .+ à 18:00, 30 minutes avant son ouverture\.$/)
    assert.doesNotMatch(early.page.url(), /invitation=/, 'the code stays in the address bar')
    assert.deepEqual(await axeSerious(early.page, 'main'), [])
    assert.deepEqual(early.errors, [])
    await early.close()

    await inv.getByRole('button', { name: 'Actualiser' }).click()
    await textOf(inv.getByRole('status').first(), /7 invité\(s\) : 3 reçue\(s\), 1 ouverte\(s\), 0 utilisée\(s\), 0 révoquée\(s\)\./)
    const cells = await inv.getByRole('row', { name: /David Roussel/ }).getByRole('cell').allInnerTexts()
    assert.match(cells[2], /^oui, le /, `opened: ${cells.join(' | ')}`)
    assert.equal(cells[3], 'non', `used: ${cells.join(' | ')}`)
  })

  it('the clerk\'s page in English: the same body, sittings and invitations, in English words', async () => {
    const en = await openClient(browser, server.baseURL, { name: 'clerk (English)', locale: 'en-GB', address: `/prepare?token=${encodeURIComponent(clerkToken)}` })
    await en.page.getByRole('heading', { level: 1, name: 'Prepare sittings' }).waitFor()
    assert.doesNotMatch(en.page.url(), /token=/, 'the token stays in the address bar')
    await waitFor('the body in the form', async () => (await en.page.getByRole('region', { name: '1. The body' }).getByRole('textbox').first().inputValue()) === 'Conseil communautaire de la Vallée')
    const sitting = en.page.getByRole('region', { name: '3. The sitting', exact: true })
    await sitting.getByRole('combobox').first().selectOption(start.date)
    await textOf(en.page.getByRole('region', { name: '4. Convocation and invitations' }).getByRole('status').first(), /^7 invited: 3 received, 3 opened, 3 used, 1 revoked\.$/)
    await textOf(sitting.locator('li[data-item="2"]'), /Withdrawn after the convocation was sent: dossier incomplet/)
    assert.deepEqual(await axeSerious(en.page, 'main'), [])
    assert.deepEqual(en.errors, [])
    await en.close()
  })

  it('nothing threw, and no page reached another origin', async () => {
    for (const p of [clerk, ...Object.values(members)]) {
      assert.deepEqual(p.errors, [], `${p.name}'s page threw`)
      assert.deepEqual(p.foreignRequests(server.baseURL), [], `${p.name}'s page reached another origin`)
    }
    for (const p of Object.values(members)) await p.close()
    await clerk.close()
  })
})
