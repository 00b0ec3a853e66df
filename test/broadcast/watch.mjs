// Drives Debian's headless Chromium to the public watch page and reports, one JSON object per
// line on stdout, what a citizen would see and hear: the video's size and decoded frames, and
// the dominant pitch of the programme's audio (440 Hz speech, the 1 kHz bleep, or silence)
// each time it changes, with the wall-clock time, and at the end the page's language and words.
// The Go test (watch_test.go) compares those times with the moments it marked the bleep.
//
//   node watch.mjs URL SECONDS [LOCALE]   (the browser's language, en-GB by default)
//
// playwright-core and the pitch meter come from test/browser (its npm ci); Chromium from Debian.
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { pitchMeter } from '../browser/pitch.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const { chromium } = await import(path.join(here, '../browser/node_modules/playwright-core/index.mjs'))

const [url, seconds, locale = 'en-GB'] = process.argv.slice(2)
const report = (o) => process.stdout.write(JSON.stringify(o) + '\n')

const browser = await chromium.launch({
  executablePath: process.env.HEMICYCLE_CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-dev-shm-usage', '--autoplay-policy=no-user-gesture-required',
    '--disable-features=WebRtcHideLocalIpsWithMdns', '--allow-loopback-in-peer-connection',
    '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic',
    '--disable-background-timer-throttling', '--disable-renderer-backgrounding'
  ]
})
try {
  const page = await browser.newPage({ locale })
  page.on('pageerror', (err) => report({ t: 'pageerror', message: String(err) }))
  page.on('console', (msg) => { if (msg.type() === 'error') report({ t: 'console', message: msg.text() }) })
  await page.exposeFunction('hemicycleReport', report)
  await page.goto(url)
  // In the page: a pitch meter on every audio element the page attaches, and a frame counter.
  await page.evaluate(pitchMeter, 'hemicycleReport')
  await page.evaluate(() => {
    let lastFrames = -1
    setInterval(() => {
      const v = document.getElementById('programme-video')
      const frames = v.getVideoPlaybackQuality().totalVideoFrames
      if (frames !== lastFrames && (lastFrames < 0 || frames - lastFrames >= 25)) {
        lastFrames = frames
        window.hemicycleReport({ t: 'video', width: v.videoWidth, height: v.videoHeight, frames, at: Date.now() })
      }
    }, 20)
  })
  await page.waitForTimeout(Number(seconds) * 1000)
  const status = await page.textContent('#watch-status')
  const words = await page.evaluate(() => ({ lang: document.documentElement.lang, now: document.getElementById('now-title').textContent, title: document.title }))
  report({ t: 'status', text: status, ...words })
} finally {
  await browser.close()
}
