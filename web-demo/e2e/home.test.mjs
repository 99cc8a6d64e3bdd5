// The first look: `/` of a server started without --static-dir, in real headless Chromium.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startChorus } from './chorus.mjs'
import { launchBrowser, SYNC_TIMEOUT_MS } from './browser.mjs'

describe('home page of a server without --static-dir', { timeout: 120_000 }, () => {
  /** @type {string} */ let dataDir
  /** @type {import('./chorus.mjs').RunningChorus} */ let server
  /** @type {import('playwright-core').Browser} */ let browser
  /** @type {import('playwright-core').Page} */ let page
  /** @type {Error[]} */ const errors = []

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'chorus-home-'))
    server = await startChorus({ dataDir })
    browser = await launchBrowser()
    page = await (await browser.newContext()).newPage()
    page.on('pageerror', error => errors.push(error))
  })

  after(async () => {
    await browser?.close()
    server?.kill()
    if (dataDir) await rm(dataDir, { recursive: true, force: true })
  })

  it('says what the server is, with its version', async () => {
    const response = await page.goto(`${server.url}/`)
    assert.equal(response?.status(), 200)
    assert.match(response?.headers()['content-type'] ?? '', /^text\/html/)
    assert.equal(await page.locator('h1').textContent(), 'Chorus collaboration server')
    assert.match(await page.locator('#version').textContent() ?? '', /^\d+\.\d+\.\d+/)
    assert.match(await page.title(), /^Chorus \d+\.\d+\.\d+/)
  })

  it("shows the snippet that connects a Yjs client to this server's WebSocket endpoint", async () => {
    const host = new URL(server.url).host
    const snippet = await page.locator('#snippet').textContent() ?? ''
    assert.ok(
      snippet.includes(`new WebsocketProvider('ws://${host}/ws', 'my-doc', ydoc)`),
      `snippet:\n${snippet}`)
    assert.ok(snippet.includes("import { WebsocketProvider } from 'y-websocket'"), `snippet:\n${snippet}`)
  })

  it('counts a connection that the snippet\'s URL accepts', async () => {
    const host = new URL(server.url).host
    assert.equal(await page.locator('#connections').textContent(), '0')
    // A second page holds a WebSocket on the snippet's URL while the first one reloads.
    const holder = await (await browser.newContext()).newPage()
    await holder.goto(`${server.url}/healthz`)
    await holder.evaluate(url => new Promise((resolve, reject) => {
      const socket = new WebSocket(url)
      Object.assign(window, { socket })
      socket.onopen = resolve
      socket.onerror = () => reject(new Error(`cannot open ${url}`))
    }), `ws://${host}/ws/my-doc`)
    await page.reload()
    assert.equal(await page.locator('#connections').textContent(), '1')
    assert.equal(await page.locator('#documents').textContent(), '1')
    await holder.context().close()
  })

  it('links only to places on this server that answer', async () => {
    const hrefs = await page.locator('a').evaluateAll(links => links.map(a => /** @type {HTMLAnchorElement} */ (a).href))
    for (const expected of ['/api/v1/openapi.json', '/metrics', '/healthz', '/readyz']) {
      assert.ok(hrefs.includes(`${server.url}${expected}`), `no link to ${expected} in ${hrefs.join(', ')}`)
    }
    for (const href of hrefs) {
      const response = await page.request.get(href, { timeout: SYNC_TIMEOUT_MS })
      assert.equal(response.status(), 200, `${href} answers ${response.status()}`)
    }
  })

  it('tells how to build and serve the demo editor', async () => {
    const demo = await page.locator('#demo').textContent() ?? ''
    assert.ok(demo.includes('npm run build'), demo)
    assert.ok(demo.includes('--static-dir web-demo/dist'), demo)
  })

  it('raised no uncaught errors', () => {
    assert.deepEqual(errors.map(String), [])
  })
})
