import { startServer, launchBrowser, joinThroughUI, delay } from './harness.mjs'
const server = await startServer({ logName: 'smoke.log' })
const browser = await launchBrowser()
try {
  const chair = await joinThroughUI(browser, server.baseURL, { name: 'Anne Morel', room: 'smoke', role: 'chair', seat: 1 })
  chair.page.on('console', (m) => console.log('console:', m.type(), m.text()))
  await delay(1500)
  console.log('errors', chair.errors)
  console.log(await chair.page.locator('#council-panel').innerText())
  await chair.page.screenshot({ path: '/tmp/hc-screens/smoke1.png' })
} finally {
  await browser.close(); await server.stop()
}
