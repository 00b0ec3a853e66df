// End-to-end: real server, real Chromium, real UI. Participants join through the forms, and the
// assertions read what the browser actually decodes (getStats) and what the page shows.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import {
  startServer, launchBrowser, openClient, joinThroughUI, expectMediaFrom, waitFor, delay,
  ensureArtifactsDir, artifactsDir, devAdminToken
} from './harness.mjs'

const axeSource = await readFile(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8')

// runAxe injects axe-core through the DevTools protocol (the page's CSP rightly refuses inline
// scripts) and returns its results for WCAG 2.1 A/AA rules.
async function runAxe (page) {
  await page.evaluate(axeSource)
  return page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] }
  }))
}

function seriousViolations (results) {
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)
}

// tabUntil presses Tab until the focused element matches selector, proving it is reachable by
// keyboard, and returns whether its focus is visibly outlined.
async function tabUntil (page, selector, max = 40) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab')
    const hit = await page.evaluate((sel) => {
      const el = document.activeElement
      if (!el || !el.matches(sel)) return null
      const style = getComputedStyle(el)
      return { visible: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2 }
    }, selector)
    if (hit) return hit
  }
  throw new Error(`${selector} was not reached with ${max} presses of Tab`)
}

// pressedBecomes waits for a toggle to settle: its click handler finishes asynchronously.
function pressedBecomes (button, value) {
  return waitFor(`aria-pressed=${value}`, async () => (await button.getAttribute('aria-pressed')) === value, { timeoutMs: 10000, intervalMs: 100 })
}

// announcements is everything the page said through its live region so far.
async function announcements (page) {
  return (await page.evaluate(() => window.__hemicycleProbe.announced())).join('\n')
}

// devToken signs a token with the --dev key pair (LiveKit's devkey/secret convention) for the
// server's RoomService API, as an administrator tool would.

describe('web client in headless Chromium against hemicycle --dev', { timeout: 300000 }, () => {
  const room = `seance-${randomBytes(3).toString('hex')}`
  let server
  let browser
  const people = {} // name → Participant

  before(async () => {
    await ensureArtifactsDir()
    server = await startServer()
    browser = await launchBrowser()
  })

  after(async () => {
    await browser?.close()
    await server?.stop()
  })

  it('serves the join screen in French or English, with nothing from third parties', async () => {
    const fr = await openClient(browser, server.baseURL, { locale: 'fr-FR', name: 'visitor-fr' })
    await fr.page.getByRole('heading', { level: 1, name: 'Rejoindre une séance' }).waitFor()
    assert.equal(await fr.page.evaluate(() => document.documentElement.lang), 'fr')
    assert.equal(await fr.page.title(), 'Rejoindre une séance – Hemicycle')
    assert.deepEqual(fr.foreignRequests(server.baseURL), [], 'the page fetched from another origin')
    assert.ok(fr.requests.some((u) => u.endsWith('/vendor/livekit-client.esm.mjs')), 'the vendored SDK was not loaded')

    const joinAxe = await runAxe(fr.page)
    assert.deepEqual(seriousViolations(joinAxe), [], 'join screen')
    await fr.close()

    const en = await openClient(browser, server.baseURL, { locale: 'en-GB', name: 'visitor-en' })
    await en.page.getByRole('heading', { level: 1, name: 'Join a meeting' }).waitFor()
    assert.equal(await en.page.evaluate(() => document.documentElement.lang), 'en')
    await en.close()
  })

  it('refuses to enter before the privacy notice is acknowledged', async () => {
    const p = await openClient(browser, server.baseURL, { name: 'hesitant' })
    const form = p.page.locator('form.dev-form')
    await form.getByLabel('Votre nom').fill('Hésitant')
    await form.getByLabel('Salle').fill(room)
    await form.getByRole('button', { name: 'Continuer' }).click()
    await p.page.getByRole('heading', { level: 1, name: 'Avant d’entrer' }).waitFor()
    await p.page.waitForFunction(() => document.querySelector('video.preview')?.videoWidth > 0)
    const lobbyAxe = await runAxe(p.page)
    assert.deepEqual(seriousViolations(lobbyAxe), [], 'lobby')
    assert.ok(await p.page.getByText('La séance est retransmise en direct au public', { exact: false }).isVisible())
    // Device choice lists the fake devices by name once permission is granted.
    assert.match(await p.page.getByLabel('Caméra', { exact: true }).innerText(), /fake_device_0/)
    assert.match(await p.page.getByLabel('Microphone', { exact: true }).innerText(), /Fake/)
    assert.ok(await p.page.locator('meter').evaluate((m) => m.value > 0), 'the microphone meter does not move')

    await p.page.getByRole('button', { name: 'Entrer dans la séance' }).click()
    await p.page.getByRole('alert').filter({ hasText: 'Vous devez prendre connaissance' }).waitFor()
    assert.equal(await p.page.evaluate(() => document.activeElement?.type), 'checkbox', 'focus goes to the acknowledgement')
    assert.equal(await p.page.locator('.room').count(), 0, 'entered the room without acknowledging')
    await p.close()
  })

  it('the lobby\'s device boxes decide what is published, even on a hasty click', async () => {
    const enter = async (name, prepare) => {
      const p = await openClient(browser, server.baseURL, { name })
      const form = p.page.locator('form.dev-form')
      await form.getByLabel('Votre nom').fill(name)
      await form.getByLabel('Salle').fill(`${room}-${name}`)
      await form.getByRole('button', { name: 'Continuer' }).click()
      await p.page.getByRole('heading', { level: 1, name: 'Avant d’entrer' }).waitFor()
      await prepare(p.page)
      await p.page.getByLabel('J’ai pris connaissance de ces informations').check()
      await p.page.getByRole('button', { name: 'Entrer dans la séance' }).click()
      await p.page.locator('.tile[data-local="true"]').waitFor({ timeout: 30000 })
      return p
    }
    const [hasty, shy] = await Promise.all([
      // Join clicked before the devices have even opened.
      enter('hasty', async () => {}),
      // Camera unticked in the lobby: it must be released, then stay off in the room.
      enter('shy', async (page) => {
        await page.waitForFunction(() => document.querySelector('video.preview')?.videoWidth > 0)
        await page.getByLabel('Entrer avec la caméra activée').uncheck()
        await page.locator('video.preview').waitFor({ state: 'hidden' })
      })
    ])
    await pressedBecomes(hasty.control('mic'), 'true')
    await pressedBecomes(hasty.control('camera'), 'true')
    assert.equal(await hasty.page.locator('.tile[data-local="true"]').getAttribute('data-camera'), 'on')

    await pressedBecomes(shy.control('mic'), 'true')
    assert.equal(await shy.control('camera').getAttribute('aria-pressed'), 'false')
    assert.equal(await shy.page.locator('.tile[data-local="true"]').getAttribute('data-camera'), 'off')
    await shy.control('camera').click()
    await pressedBecomes(shy.control('camera'), 'true')
    await waitFor('shy\'s own camera to show', async () =>
      shy.page.locator('.tile[data-local="true"] video').evaluate((v) => v.videoWidth > 0 && v.closest('.tile').dataset.camera === 'on'))
    await Promise.all([hasty.close(), shy.close()])
  })

  it('two participants join through the UI and see and hear each other', async () => {
    const [anne, bruno] = await Promise.all([
      joinThroughUI(browser, server.baseURL, { name: 'Anne Martin', room, role: 'chair' }),
      joinThroughUI(browser, server.baseURL, { name: 'Bruno Petit', room, role: 'member', seat: 7 })
    ])
    Object.assign(people, { anne, bruno })
    for (const p of [anne, bruno]) p.id = await p.identity

    await Promise.all([expectMediaFrom(anne, [bruno.id]), expectMediaFrom(bruno, [anne.id])])

    // The participant list shows role and seat from the server's attributes or the token.
    await waitFor('Bruno in Anne\'s list with role and seat', async () =>
      /Conseiller·ère · siège 7/.test(await anne.person(bruno.id).innerText().catch(() => '')))
    await waitFor('Anne in Bruno\'s list as chair', async () =>
      /Président·e de séance/.test(await bruno.person(anne.id).innerText().catch(() => '')))
  })

  it('four participants each decode the three others\' video and hear their audio', async () => {
    // Claire joins with the keyboard only, checking that every step is reachable and focus shows.
    const claire = await openClient(browser, server.baseURL, { name: 'claire' })
    const page = claire.page
    await page.locator('form.dev-form').waitFor()
    assert.ok((await tabUntil(page, 'input[name="name"]')).visible, 'no visible focus on the name field')
    await page.keyboard.type('Claire Durand')
    await tabUntil(page, 'input[name="room"]')
    await page.keyboard.press('Control+A')
    await page.keyboard.type(room)
    assert.ok((await tabUntil(page, 'form.dev-form button[type="submit"]')).visible, 'no visible focus on Continue')
    await page.keyboard.press('Enter')
    await page.getByRole('heading', { level: 1, name: 'Avant d’entrer' }).waitFor()
    await page.waitForFunction(() => document.querySelector('video.preview')?.videoWidth > 0)
    await tabUntil(page, 'select[name="quality"]')
    await page.keyboard.press('ArrowUp') // standard → low
    await page.waitForFunction(() => document.querySelector('video.preview')?.videoHeight === 360)
    await tabUntil(page, 'input[type="checkbox"][required]')
    await page.keyboard.press('Space')
    assert.ok((await tabUntil(page, '.lobby-form button[type="submit"]')).visible, 'no visible focus on Join')
    await page.keyboard.press('Enter')
    await page.getByRole('heading', { level: 1, name: `Séance « ${room} »` }).waitFor({ timeout: 30000 })

    const david = await joinThroughUI(browser, server.baseURL, { name: 'David Leroy', room, role: 'clerk' })
    Object.assign(people, { claire, david })
    for (const p of [claire, david]) p.id = await p.identity

    const all = [people.anne, people.bruno, claire, david]
    await Promise.all(all.map((viewer) => expectMediaFrom(viewer, all.filter((p) => p !== viewer).map((p) => p.id), { timeoutMs: 45000 })))
    for (const viewer of all) {
      assert.equal(await viewer.page.locator('.tile[data-source="camera"]').count(), 4, `${viewer.name} does not show four camera tiles`)
      assert.match(await viewer.page.locator('#people-title').innerText(), /Participants \(4\)/)
    }
    // The server rates every connection (ConnectionQualityUpdate): no tile stays "unknown".
    await Promise.all(all.map((viewer) => waitFor(`${viewer.name} to show every connection's quality`, async () => {
      const shown = await viewer.page.$$eval('.tile[data-source="camera"]', (tiles) => tiles.map((t) => t.dataset.quality))
      return { ok: shown.length === 4 && shown.every((q) => q && q !== 'unknown'), state: shown }
    })))
    // Joins were announced in the live region of those already there.
    assert.match(await announcements(people.anne.page), /David Leroy a rejoint la séance/)
  })

  it('a video out of sight is not sent: hidden, it stops arriving; shown again, it plays', async () => {
    // Adaptive stream: the page tells the server which videos it shows and at what size, and
    // the server pauses the others (sobriety: nothing is sent that nobody sees).
    const { anne, bruno, claire } = people
    const hidden = `${bruno.id}/camera`
    const shown = `${claire.id}/camera`
    const setHidden = (on) => anne.page.evaluate(([id, on]) => {
      document.querySelector(`.tile[data-identity="${id}"][data-source="camera"] video`).style.display = on ? 'none' : ''
    }, [bruno.id, on])
    await setHidden(true)
    await delay(2000) // the SDK's reaction delay, the server's pause, packets in flight
    const before = await anne.media()
    await delay(3000)
    const after = await anne.media()
    const hiddenBytes = after.videoBytes[hidden] - before.videoBytes[hidden]
    const shownBytes = after.videoBytes[shown] - before.videoBytes[shown]
    assert.ok(shownBytes > 30000, `the visible video brought only ${shownBytes} bytes in 3 s`)
    assert.ok(hiddenBytes < shownBytes / 20, `the hidden video still brought ${hiddenBytes} bytes in 3 s (the visible one ${shownBytes})`)
    await setHidden(false)
    await expectMediaFrom(anne, [bruno.id], { audio: false, timeoutMs: 15000 })
  })

  it('microphone mute and camera off propagate to the others', async () => {
    const { anne, bruno, claire } = people
    assert.equal(await bruno.control('mic').getAttribute('aria-pressed'), 'true')
    await bruno.control('mic').click()
    await bruno.control('camera').click()
    await pressedBecomes(bruno.control('mic'), 'false')
    await pressedBecomes(bruno.control('camera'), 'false')
    for (const viewer of [anne, claire]) {
      await waitFor(`${viewer.name} to see Bruno muted with camera off`, async () => {
        const tile = viewer.tile(bruno.id)
        const state = { mic: await tile.getAttribute('data-mic'), camera: await tile.getAttribute('data-camera'), person: await viewer.person(bruno.id).getAttribute('data-mic') }
        return { ok: state.mic === 'off' && state.camera === 'off' && state.person === 'off', state }
      })
      assert.ok(await viewer.tile(bruno.id).locator('.avatar').isVisible(), 'the initials replace a stopped camera')
      assert.match(await viewer.tile(bruno.id).innerText(), /micro coupé/)
    }
    const own = await announcements(bruno.page)
    assert.match(own, /Micro coupé\./)
    assert.doesNotMatch(own, /coupé par la présidence/, 'a mute of one\'s own was announced as the chair\'s')
    await bruno.control('mic').click()
    await bruno.control('camera').click()
    await waitFor('Anne to see Bruno back', async () => {
      const tile = anne.tile(bruno.id)
      return (await tile.getAttribute('data-mic')) === 'on' && (await tile.getAttribute('data-camera')) === 'on'
    })
    await expectMediaFrom(anne, [bruno.id])
  })

  it('the active speaker is highlighted for the others', async () => {
    const { anne, bruno, claire, david } = people
    // Everyone but Bruno mutes, so Bruno is the only one the server can hear.
    const quiet = [anne, claire, david]
    for (const p of quiet) await p.control('mic').click()
    try {
      for (const p of quiet) await pressedBecomes(p.control('mic'), 'false')
      for (const viewer of [anne, david]) {
        await waitFor(`${viewer.name} to highlight Bruno alone, with the "parle" badge`, async () => {
          const state = await viewer.page.evaluate(() => Object.fromEntries(
            [...document.querySelectorAll('.tile[data-source="camera"]')].map((t) => [
              t.dataset.identity,
              // What a sighted person gets: the frame and the badge's text, not only colour.
              `${t.dataset.speaking}/${getComputedStyle(t.querySelector('.speaking-badge')).display !== 'none' ? t.querySelector('.speaking-badge').textContent : ''}`
            ])))
          const ok = state[bruno.id] === 'true/parle' && Object.entries(state).every(([id, s]) => id === bruno.id || s === 'false/')
          return { ok, state }
        }, { intervalMs: 200 })
      }
    } finally {
      // Unmute whatever happened, so that the next scenarios start from a known state.
      for (const p of quiet) {
        if ((await p.control('mic').getAttribute('aria-pressed')) === 'false') await p.control('mic').click()
      }
      for (const p of quiet) await pressedBecomes(p.control('mic'), 'true')
    }
  })

  it('the chair\'s server-side mute is announced to the muted participant', async (t) => {
    const { anne, claire } = people
    // Find Claire's microphone track from Anne's side: the SDK's track sid is on the audio sink.
    const trackSid = await anne.page.locator(`audio[data-identity="${claire.id}"]`).getAttribute('data-track-sid')
    const res = await fetch(`${server.baseURL}/twirp/livekit.RoomService/MutePublishedTrack`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${devAdminToken(room)}` },
      body: JSON.stringify({ room, identity: claire.id, track_sid: trackSid, muted: true })
    })
    if (res.status === 404) {
      t.skip('the server has no RoomService MutePublishedTrack yet')
      return
    }
    assert.equal(res.status, 200, `MutePublishedTrack answered ${res.status}: ${await res.text()}`)
    await waitFor('Claire to be told she was muted', async () =>
      /Votre micro a été coupé par la présidence/.test(await announcements(claire.page)))
    assert.equal(await claire.control('mic').getAttribute('aria-pressed'), 'false')
    await waitFor('Anne to see Claire muted', async () => (await anne.tile(claire.id).getAttribute('data-mic')) === 'off')
    await claire.control('mic').click()
    await waitFor('Anne to see Claire unmuted', async () => (await anne.tile(claire.id).getAttribute('data-mic')) === 'on')
  })

  it('a screen share appears as its own tile for everyone', async () => {
    const { anne, bruno, claire, david } = people
    await david.control('screen').click()
    await pressedBecomes(david.control('screen'), 'true')
    await Promise.all([anne, bruno, claire].map(async (viewer) => {
      await viewer.tile(david.id, 'screen').waitFor({ timeout: 20000 })
      await expectMediaFrom(viewer, [david.id], { source: 'screen', audio: false, minFrames: 5 })
    }))
    assert.equal(await anne.tile(david.id, 'camera').count(), 1, 'the camera tile stays beside the share')
    assert.match(await announcements(anne.page), /David Leroy partage son écran/)
  })

  it('the room has no serious or critical accessibility violation; screenshot saved', async (t) => {
    const { anne } = people
    // Let a speaker highlight and the quality indicators settle into the picture.
    await delay(1500)
    const shot = path.join(artifactsDir, 'room.png')
    await anne.page.screenshot({ path: shot })
    const results = await runAxe(anne.page)
    await writeFile(path.join(artifactsDir, 'axe-room.json'), JSON.stringify({ violations: results.violations, incomplete: results.incomplete.map((r) => ({ id: r.id, impact: r.impact, nodes: r.nodes.length })) }, null, 2))
    t.diagnostic(`screenshot: ${shot}`)
    t.diagnostic(`axe-core ${results.testEngine.version}: ${results.violations.length} violations (${results.violations.map((v) => `${v.id}/${v.impact}`).join(', ') || 'none'}), ${results.passes.length} rules passed, ${results.incomplete.length} to review (${results.incomplete.map((v) => v.id).join(', ') || 'none'})`)
    assert.deepEqual(seriousViolations(results), [])

    // The mic toggle is reachable by keyboard, with a visible focus ring.
    await anne.page.locator('#room-title').focus()
    assert.ok((await tabUntil(anne.page, '.controls [data-control="mic"]')).visible, 'no visible focus on the microphone toggle')

    await people.david.control('screen').click()
    await waitFor('the share tile to go away', async () => (await anne.tile(people.david.id, 'screen').count()) === 0)
  })

  it('a page whose signalling is cut (offline emulation) shows it is reconnecting, resumes, restarts only the ICE that needs it, media both ways', async () => {
    const { anne, bruno, david } = people
    const sessionsBefore = await david.iceSessions()
    assert.ok(sessionsBefore.length >= 2, 'David should have a publisher and a subscriber connection')
    await david.context.setOffline(true)
    await david.page.locator('.banner.reconnecting').waitFor({ state: 'visible', timeout: 30000 })
    assert.match(await david.page.locator('.conn-state').innerText(), /Reconnexion/)
    await delay(3000)
    await david.context.setOffline(false)
    await david.page.locator('.banner.reconnecting').waitFor({ state: 'hidden', timeout: 45000 })
    await waitFor('David to be connected again', async () => (await david.page.locator('.conn-state').getAttribute('data-state')) === 'connected')
    // Offline emulation cuts HTTP and the signalling WebSocket but not WebRTC's UDP, so what is
    // checked is the recovery: the SDK resumes and restarts ICE on its publisher connection,
    // which the server answers (a new ICE session); the subscriber connection, whose path never
    // broke, keeps its session (the server restarts it only when its path has not come back);
    // media must flow both ways.
    await waitFor('David\'s publisher connection to run on a new ICE session, the subscriber on its own', async () => {
      const now = await david.iceSessions()
      const renewed = now.filter((u) => !sessionsBefore.includes(u))
      return { ok: now.length >= 2 && renewed.length === 1, state: { sessionsBefore, now } }
    })
    await Promise.all([
      expectMediaFrom(david, [anne.id, bruno.id], { timeoutMs: 45000 }),
      expectMediaFrom(anne, [david.id], { timeoutMs: 45000 })
    ])
  })

  it('leaving removes the participant\'s tile for the others', async () => {
    const { anne, bruno, claire, david } = people
    await claire.control('leave').click()
    await claire.page.getByRole('heading', { level: 1, name: 'Vous avez quitté la séance' }).waitFor()
    for (const viewer of [anne, bruno, david]) {
      await waitFor(`${viewer.name} to drop Claire's tile`, async () =>
        (await viewer.tile(claire.id).count()) === 0 && (await viewer.person(claire.id).count()) === 0)
      assert.match(await viewer.page.locator('#people-title').innerText(), /Participants \(3\)/)
    }
    assert.match(await announcements(anne.page), /Claire Durand a quitté la séance/)
  })

  it('an invitation link brings a public viewer in, without being seen or heard', async () => {
    const { anne, bruno } = people
    const res = await fetch(`${server.baseURL}/api/dev/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ room, identity: 'public-1', name: 'Citoyenne', role: 'viewer' })
    })
    assert.equal(res.status, 200)
    const { token } = await res.json()
    const viewer = await openClient(browser, server.baseURL, { name: 'viewer' })
    people.viewer = viewer
    await viewer.page.goto(`${server.baseURL}/join?token=${encodeURIComponent(token)}`)
    await viewer.page.getByRole('heading', { level: 1, name: 'Avant d’entrer' }).waitFor()
    assert.equal(new URL(viewer.page.url()).search, '', 'the token stayed in the address bar')
    assert.match(await viewer.page.locator('.joining-as').innerText(), new RegExp(`« ${room} » en tant que Citoyenne \\(Public\\)`))
    assert.equal(await viewer.page.locator('video.preview').count(), 0, 'a viewer gets no camera preview')
    await viewer.page.getByLabel('J’ai pris connaissance de ces informations').check()
    await viewer.page.getByRole('button', { name: 'Entrer dans la séance' }).click()
    await viewer.page.getByRole('heading', { level: 1, name: `Séance « ${room} »` }).waitFor({ timeout: 30000 })
    // What a viewer receives is the server's choice (the public programme, DESIGN.md §8); the
    // client must show each participant as a picture or as initials, never as a black box.
    for (const p of [anne, bruno]) {
      await waitFor(`the viewer to show ${p.name} as a picture or initials`, async () => {
        const tile = viewer.tile(p.id)
        if ((await tile.count()) === 0) return false
        return tile.evaluate((t) => {
          const video = t.querySelector('video')
          const avatar = t.querySelector('.avatar')
          return (t.dataset.video === 'shown' && video.videoWidth > 0 && getComputedStyle(video).display !== 'none') ||
            (t.dataset.video === 'none' && getComputedStyle(avatar).display !== 'none' && avatar.textContent.length > 0)
        })
      })
    }
    assert.equal(await viewer.control('mic').isVisible(), false, 'a viewer has no microphone toggle')
    assert.ok(await viewer.page.getByText('Vous assistez à la séance sans micro ni caméra').isVisible())
    assert.equal(await viewer.page.locator('.tile[data-local="true"]').count(), 0, 'a viewer has no tile of their own')
    assert.match(await anne.page.locator('#people-title').innerText(), /Participants \(3\)/, 'the hidden viewer was counted')

    for (const p of Object.values(people)) {
      assert.deepEqual(p.errors, [], `${p.name}'s page threw`)
      assert.deepEqual(p.foreignRequests(server.baseURL), [], `${p.name}'s page reached another origin`)
      assert.ok(p.requests.some((u) => u.startsWith(`ws://${new URL(server.baseURL).host}/rtc`)), `${p.name} never opened /rtc`)
    }
  })
})
