// The vendored SDK must be exactly the pinned npm release: same version, same bytes as the
// package npm installed here (npm checks that package against the lockfile's integrity hash).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { repoRoot } from './harness.mjs'

const vendorDir = path.join(repoRoot, 'web-client', 'static', 'vendor')

test('vendored livekit-client is the pinned npm release, byte for byte', async () => {
  const pinned = (await readFile(path.join(vendorDir, 'VERSION'), 'utf8')).trim()
  // Read from node_modules directly: the package's exports map hides package.json.
  const pkgPath = path.join(path.dirname(new URL(import.meta.url).pathname), 'node_modules', 'livekit-client', 'package.json')
  const pkg = JSON.parse(await readFile(pkgPath, 'utf8'))
  assert.equal(pkg.version, pinned, 'test/browser/package.json and web-client/static/vendor/VERSION pin different versions')

  const lock = JSON.parse(await readFile(new URL('./package-lock.json', import.meta.url), 'utf8'))
  assert.equal(lock.packages['node_modules/livekit-client']?.version, pinned, 'package-lock.json pins another livekit-client')

  const fromNpm = await readFile(path.join(path.dirname(pkgPath), 'dist', 'livekit-client.esm.mjs'))
  const vendored = await readFile(path.join(vendorDir, 'livekit-client.esm.mjs'))
  assert.ok(fromNpm.equals(vendored), 'the vendored bundle differs from npm\'s; run web-client/refresh-vendor.sh')

  const licence = await readFile(path.join(path.dirname(pkgPath), 'LICENSE'))
  assert.ok(licence.equals(await readFile(path.join(vendorDir, 'LICENSE.livekit-client'))), 'the vendored licence differs from the package\'s')
})
