// End to end: the built demo, served by the real chorus binary, in real headless Chromium.
//
// The steps share one server, browser and document, so they run in order inside one describe;
// each step asserts what a person would see.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomUUID } from 'node:crypto'
import { startChorus } from './chorus.mjs'
import {
  editorText, launchBrowser, openUser, remoteCaret, sideBySide, waitForPresence, waitForState, waitForText
} from './browser.mjs'

const DIST = fileURLToPath(new URL('../dist', import.meta.url))
const SCREENSHOTS = fileURLToPath(new URL('./screenshots', import.meta.url))

const DESKTOP = { width: 1024, height: 660 }
const PHONE = { width: 390, height: 760 }

const ADA_TEXT = 'Launch checklist\n\n- Ship the Chorus server\n- Record the demo'
const GRACE_TEXT = '\n- Write the release notes'
const OFFLINE_TEXT = '\n- Fix typos (written offline)'

describe('web demo against the chorus binary', { timeout: 180_000 }, () => {
  /** @type {string} */ let dataDir
  /** @type {import('./chorus.mjs').RunningChorus} */ let server
  /** @type {import('playwright-core').Browser} */ let browser
  /** @type {Awaited<ReturnType<typeof openUser>>} */ let ada
  /** @type {Awaited<ReturnType<typeof openUser>>} */ let grace
  /** @type {Awaited<ReturnType<typeof openUser>>[]} */ const users = []
  // A fresh document per run, with a space and a slash to exercise the name's URL encoding.
  const doc = `e2e/launch plan ${randomUUID().slice(0, 8)}`
  /** Text both users saw before the restart; what the server must bring back. */
  let textBeforeRestart = ''

  before(async () => {
    assert.ok(existsSync(join(DIST, 'index.html')), `no build in ${DIST}: run \`npm run build\` first`)
    await mkdir(SCREENSHOTS, { recursive: true })
    dataDir = await mkdtemp(join(tmpdir(), 'chorus-web-demo-'))
    server = await startChorus({ dataDir, staticDir: DIST })
    browser = await launchBrowser()
  })

  after(async () => {
    await browser?.close()
    server?.kill()
    if (dataDir) await rm(dataDir, { recursive: true, force: true })
  })

  it('serves the demo and connects two users to the same document', async () => {
    ada = await openUser(browser, { url: server.url, doc, name: 'Ada Lovelace', color: '#2563eb', viewport: DESKTOP })
    grace = await openUser(browser, { url: server.url, doc, name: 'Grace Hopper', color: '#c026d3', viewport: PHONE })
    users.push(ada, grace)
    for (const { page } of users) {
      assert.equal(await page.locator('#doc-name').textContent(), doc)
      await waitForPresence(page, ['Ada Lovelace', 'Grace Hopper'])
    }
  })

  it('shows what one user types to the other, both ways', async () => {
    await ada.page.locator('.cm-content').click()
    await ada.page.keyboard.type(ADA_TEXT)
    await waitForText(grace.page, ADA_TEXT)

    await grace.page.locator('.cm-content').click()
    await grace.page.keyboard.press('Control+End')
    await grace.page.keyboard.type(GRACE_TEXT)
    await waitForText(ada.page, ADA_TEXT + GRACE_TEXT)
    await waitForText(grace.page, ADA_TEXT + GRACE_TEXT)
  })

  it("draws each user's cursor, named and in their colour, in the other's editor", async () => {
    // Grace selects "release notes" so Ada's view also shows a remote selection.
    for (let i = 0; i < 'release notes'.length; i++) await grace.page.keyboard.press('Shift+ArrowLeft')

    const adaCaretAtGrace = await remoteCaret(grace.page, 'Ada Lovelace')
    const graceCaretAtAda = await remoteCaret(ada.page, 'Grace Hopper')
    await ada.page.locator('.cm-ySelection').first().waitFor({ timeout: 15_000 })

    // The caret's colour is the one the owner's own presence list shows for them.
    const ownColor = async (/** @type {import('playwright-core').Page} */ page) =>
      page.locator('#presence .person[data-self="true"] .avatar').evaluate(el => getComputedStyle(el).backgroundColor)
    const caretColor = async (/** @type {import('playwright-core').Locator} */ caret) =>
      caret.evaluate(el => getComputedStyle(el).borderLeftColor)
    assert.equal(await caretColor(adaCaretAtGrace), await ownColor(ada.page))
    assert.equal(await caretColor(graceCaretAtAda), await ownColor(grace.page))

    const [adaShot, graceShot] = await Promise.all([ada.page.screenshot(), grace.page.screenshot()])
    const pair = await sideBySide(browser, [
      { png: adaShot, caption: 'Ada Lovelace · desktop' },
      { png: graceShot, caption: 'Grace Hopper · phone' }
    ])
    await writeFile(join(SCREENSHOTS, 'two-users.png'), pair)
  })

  it('keeps edits made offline and merges them when back online', async () => {
    await grace.page.keyboard.press('Control+End')
    await grace.page.locator('#toggle-connection').click()
    await waitForState(grace.page, 'offline')
    // Offline, Grace sees only herself; Ada sees Grace leave.
    await waitForPresence(grace.page, ['Grace Hopper'])
    await waitForPresence(ada.page, ['Ada Lovelace'])

    await grace.page.locator('.cm-content').focus()
    await grace.page.keyboard.type(OFFLINE_TEXT)
    await waitForState(grace.page, 'pending')
    assert.equal(await editorText(ada.page), ADA_TEXT + GRACE_TEXT, 'an offline edit reached the other user')

    await grace.page.locator('#toggle-connection').click()
    await waitForState(grace.page, 'connected')
    await waitForText(ada.page, ADA_TEXT + GRACE_TEXT + OFFLINE_TEXT)
    await waitForPresence(ada.page, ['Ada Lovelace', 'Grace Hopper'])
  })

  it('brings the document back after a server restart', async () => {
    textBeforeRestart = await editorText(ada.page)
    assert.equal(textBeforeRestart, ADA_TEXT + GRACE_TEXT + OFFLINE_TEXT)
    assert.equal(await editorText(grace.page), textBeforeRestart)

    const exit = await server.stop()
    assert.deepEqual(exit, { code: 0, signal: null }, `chorus did not exit cleanly on SIGTERM. Output:\n${server.output()}`)

    // The open pages notice, and say so; an edit made now is pending, not lost.
    await waitForState(ada.page, 'reconnecting')
    await waitForState(grace.page, 'reconnecting')
    await ada.page.locator('.cm-content').focus()
    await ada.page.keyboard.press('Control+End')
    await ada.page.keyboard.type('\n- Unsent while the server was down')
    await waitForState(ada.page, 'pending')
    await ada.page.screenshot({ path: join(SCREENSHOTS, 'server-down.png') })
    // These pages point at the old port. Should the new server get that port again, Ada's
    // unsent line must not reach it: it is not part of what the restart has to bring back.
    await ada.page.locator('#toggle-connection').click()

    server = await startChorus({ dataDir, staticDir: DIST })
    const linus = await openUser(browser, { url: server.url, doc, name: 'Linus', color: '#16a34a', viewport: DESKTOP })
    users.push(linus)
    await waitForText(linus.page, textBeforeRestart)
    await linus.page.screenshot({ path: join(SCREENSHOTS, 'after-restart.png') })
  })

  it('names a document when the URL has none, and "New document" opens an empty one', async () => {
    const { page } = users[users.length - 1]
    await page.locator('#new-doc').click()
    await page.waitForURL(url => url.searchParams.has('doc') && url.searchParams.get('doc') !== doc)
    await waitForState(page, 'connected')
    const fresh = new URL(page.url()).searchParams.get('doc')
    assert.equal(await page.locator('#doc-name').textContent(), fresh)
    assert.equal(await editorText(page), '')

    await page.goto(server.url + '/')
    await waitForState(page, 'connected')
    const named = new URL(page.url()).searchParams.get('doc')
    assert.ok(named && named !== fresh && named !== doc, `no new name in ${page.url()}`)
    assert.equal(await page.locator('#doc-name').textContent(), named)
  })

  it('raised no uncaught errors in any page', () => {
    for (const { name, errors } of users) {
      assert.deepEqual(errors.map(String), [], `uncaught errors in ${name}'s page`)
    }
  })
})
