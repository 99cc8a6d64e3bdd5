// End to end: the Tiptap page over @hocuspocus/provider, served by the real chorus binary, in real
// headless Chromium. Two users edit rich text; "Saved" must mean stored: after it shows, the
// server is killed with SIGKILL (no shutdown, no snapshot), restarted on the same data dir, and a
// reloaded page must show every word.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomUUID } from 'node:crypto'
import { startChorus } from './chorus.mjs'
import { SYNC_TIMEOUT_MS, launchBrowser, openUser, sideBySide, waitForPresence, waitForState } from './browser.mjs'

const DIST = fileURLToPath(new URL('../dist', import.meta.url))
const SCREENSHOTS = fileURLToPath(new URL('./screenshots', import.meta.url))

const DESKTOP = { width: 960, height: 560 }
const PHONE = { width: 390, height: 640 }
const TIPTAP = '/tiptap.html'

/**
 * The document as the editor shows it, one line per block. Runs in the page, so it must be
 * self-contained. Other people's carets (and their name labels) are not document text.
 */
function visibleRichText () {
  const blocks = document.querySelectorAll('#editor .tiptap > *')
  return Array.from(blocks, block => {
    const copy = /** @type {Element} */ (block.cloneNode(true))
    copy.querySelectorAll('.collaboration-carets__caret').forEach(node => node.remove())
    return copy.textContent ?? ''
  }).join('\n')
}

/** @param {import('playwright-core').Page} page */
const richText = page => page.evaluate(visibleRichText)

/**
 * @param {import('playwright-core').Page} page
 * @param {string} expected
 */
async function waitForRichText (page, expected) {
  try {
    await page.waitForFunction(`(${visibleRichText})() === ${JSON.stringify(expected)}`, undefined, { timeout: SYNC_TIMEOUT_MS })
  } catch (error) {
    throw new Error(`editor never showed ${JSON.stringify(expected)}; it shows ${JSON.stringify(await richText(page))}`, { cause: error })
  }
}

/**
 * The runs of text the editor shows in bold, in order, without carets' name labels.
 * @param {import('playwright-core').Page} page
 */
const boldWords = page => page.evaluate(() => Array.from(document.querySelectorAll('#editor .tiptap strong'), strong => {
  const copy = /** @type {Element} */ (strong.cloneNode(true))
  copy.querySelectorAll('.collaboration-carets__caret').forEach(node => node.remove())
  return copy.textContent ?? ''
}))

/**
 * Starts recording every state the "saved" badge goes through, so a step can check that it
 * really waited for the server ("Saving…") before it said "Saved".
 * @param {import('playwright-core').Page} page
 */
async function recordSaveStates (page) {
  await page.evaluate(() => {
    const badge = /** @type {HTMLElement} */ (document.getElementById('saved'))
    const seen = /** @type {string[]} */ ([])
    Object.assign(window, { savedStatesSeen: seen })
    new MutationObserver(() => seen.push(badge.dataset.state ?? '')).observe(badge, { attributeFilter: ['data-state'] })
  })
  return {
    /** @returns {Promise<string[]>} */
    seen: () => page.evaluate(() => /** @type {any} */ (window).savedStatesSeen)
  }
}

/** @param {import('playwright-core').Page} page */
async function waitForSaved (page) {
  await page.locator('#saved[data-state="saved"]').waitFor({ timeout: SYNC_TIMEOUT_MS })
  assert.equal(await page.locator('#saved').textContent(), 'Saved')
}

describe('Tiptap demo over Hocuspocus against the chorus binary', { timeout: 180_000 }, () => {
  /** @type {string} */ let dataDir
  /** @type {import('./chorus.mjs').RunningChorus} */ let server
  /** @type {import('playwright-core').Browser} */ let browser
  /** @type {Awaited<ReturnType<typeof openUser>>} */ let ada
  /** @type {Awaited<ReturnType<typeof openUser>>} */ let grace
  const doc = `e2e/rich notes ${randomUUID().slice(0, 8)}`

  before(async () => {
    assert.ok(existsSync(join(DIST, 'tiptap.html')), `no build in ${DIST}: run \`npm run build\` first`)
    await mkdir(SCREENSHOTS, { recursive: true })
    dataDir = await mkdtemp(join(tmpdir(), 'chorus-tiptap-'))
    server = await startChorus({ dataDir, staticDir: DIST })
    browser = await launchBrowser()
  })

  after(async () => {
    await browser?.close()
    await server?.kill()
    if (dataDir) await rm(dataDir, { recursive: true, force: true })
  })

  it('connects two users to one document over /hocuspocus', async () => {
    ada = await openUser(browser, { url: server.url, path: TIPTAP, doc, name: 'Ada Lovelace', color: '#2563eb', viewport: DESKTOP })
    grace = await openUser(browser, { url: server.url, path: TIPTAP, doc, name: 'Grace Hopper', color: '#c026d3', viewport: PHONE })
    for (const { page } of [ada, grace]) {
      assert.equal(await page.locator('#doc-name').textContent(), doc)
      await waitForPresence(page, ['Ada Lovelace', 'Grace Hopper'])
    }
  })

  it('shows what one user types to the other, bold included, and says "Saved" once stored', async () => {
    const saves = await recordSaveStates(ada.page)
    await ada.page.locator('#editor .tiptap').click()
    await ada.page.keyboard.type('Launch notes')
    await ada.page.keyboard.press('Enter')
    await ada.page.keyboard.type('Ship ')
    await ada.page.keyboard.press('Control+B')
    await ada.page.keyboard.type('on Friday')
    await ada.page.keyboard.press('Control+B')
    await ada.page.keyboard.type(' after the review.')

    const expected = 'Launch notes\nShip on Friday after the review.'
    await waitForRichText(grace.page, expected)
    assert.deepEqual(await boldWords(grace.page), ['on Friday'], 'the bold mark did not reach the other user')

    await waitForSaved(ada.page)
    const seen = await saves.seen()
    assert.ok(seen.includes('saving'), `the badge said "Saved" without waiting for the server: ${seen.join(' → ')}`)
    assert.equal(seen.at(-1), 'saved')
  })

  it("draws each user's caret, named and in their colour, in the other's editor", async () => {
    await grace.page.locator('#editor .tiptap').click()
    await grace.page.keyboard.press('Control+End')
    await grace.page.keyboard.press('Enter')
    // The toolbar's bold button, this time, rather than the shortcut.
    await grace.page.locator('#toolbar .tool[title^="Bold"]').click()
    await grace.page.keyboard.type('Grace agrees')
    assert.equal(await grace.page.locator('#toolbar .tool[title^="Bold"]').getAttribute('aria-pressed'), 'true')
    await waitForRichText(ada.page, 'Launch notes\nShip on Friday after the review.\nGrace agrees')
    assert.deepEqual(await boldWords(ada.page), ['on Friday', 'Grace agrees'])

    const caretOf = (/** @type {import('playwright-core').Page} */ page, /** @type {string} */ name) =>
      page.locator('.collaboration-carets__caret').filter({ has: page.locator('.collaboration-carets__label', { hasText: name }) })
    const adaAtGrace = caretOf(grace.page, 'Ada Lovelace')
    const graceAtAda = caretOf(ada.page, 'Grace Hopper')
    await adaAtGrace.waitFor({ state: 'visible', timeout: SYNC_TIMEOUT_MS })
    await graceAtAda.waitFor({ state: 'visible', timeout: SYNC_TIMEOUT_MS })

    // The caret's colour is the one the owner's own presence list shows for them.
    const ownColor = (/** @type {import('playwright-core').Page} */ page) =>
      page.locator('#presence .person[data-self="true"] .avatar').evaluate(el => getComputedStyle(el).backgroundColor)
    const caretColor = (/** @type {import('playwright-core').Locator} */ caret) =>
      caret.evaluate(el => getComputedStyle(el).borderLeftColor)
    assert.equal(await caretColor(adaAtGrace), await ownColor(ada.page))
    assert.equal(await caretColor(graceAtAda), await ownColor(grace.page))

    await waitForSaved(grace.page)
    await waitForSaved(ada.page)
    // The phone page scrolled down to its editor; the picture shows it from the top.
    await grace.page.evaluate(() => window.scrollTo(0, 0))
    const [adaShot, graceShot] = await Promise.all([ada.page.screenshot(), grace.page.screenshot()])
    const pair = await sideBySide(browser, [
      { png: adaShot, caption: 'Ada Lovelace · desktop' },
      { png: graceShot, caption: 'Grace Hopper · phone' }
    ])
    await writeFile(join(SCREENSHOTS, 'tiptap-two-users.png'), pair)
  })

  it('keeps everything shown as "Saved" through a SIGKILL of the server', async () => {
    const saves = await recordSaveStates(ada.page)
    await ada.page.locator('#editor .tiptap').click()
    await ada.page.keyboard.press('Control+End')
    await ada.page.keyboard.press('Enter')
    await ada.page.keyboard.type('Written just before the crash.')
    await waitForSaved(ada.page)
    assert.ok((await saves.seen()).includes('saving'), 'the last edit was never waited for')
    const savedText = await richText(ada.page)
    assert.equal(savedText, 'Launch notes\nShip on Friday after the review.\nGrace agrees\nWritten just before the crash.')
    // The new line may carry on Grace's bold (ProseMirror keeps the marks at the cursor); either
    // way, the restart must bring back exactly what was on screen.
    const savedBold = await boldWords(ada.page)

    const exit = await server.kill()
    assert.equal(exit.signal, 'SIGKILL')
    await waitForState(ada.page, 'reconnecting')
    // An edit made now cannot be stored, and the badge must not pretend otherwise. It is not
    // part of what the restart has to bring back.
    await ada.page.locator('#editor .tiptap').focus()
    await ada.page.keyboard.type(' Typed while the server was down.')
    await ada.page.locator('#saved[data-state="unsaved"]').waitFor({ timeout: SYNC_TIMEOUT_MS })
    assert.equal(await ada.page.locator('#saved').textContent(), 'Not saved')
    await waitForState(ada.page, 'pending')
    // Leave the pages, so no provider still holding the text can hand it back to the new server:
    // whatever the reload shows must come from the server's data dir alone.
    await Promise.all([ada.page.goto('about:blank'), grace.page.goto('about:blank')])

    server = await startChorus({ dataDir, staticDir: DIST })
    await ada.page.goto(`${server.url}${TIPTAP}?doc=${encodeURIComponent(doc)}`)
    await waitForState(ada.page, 'connected')
    await waitForRichText(ada.page, savedText)
    assert.deepEqual(await boldWords(ada.page), savedBold)
    await waitForSaved(ada.page)
  })

  it('links the Tiptap page and the CodeMirror page both ways', async () => {
    const { page } = grace
    await page.goto(`${server.url}${TIPTAP}`)
    await page.getByRole('link', { name: 'Plain text' }).click()
    await page.locator('.cm-content').waitFor({ timeout: SYNC_TIMEOUT_MS })
    await page.getByRole('link', { name: 'Rich text' }).click()
    await page.locator('#editor .tiptap').waitFor({ timeout: SYNC_TIMEOUT_MS })
    assert.match(new URL(page.url()).pathname, /\/tiptap\.html$/)
  })

  it('raised no uncaught errors in any page', () => {
    for (const { name, errors } of [ada, grace]) {
      assert.deepEqual(errors.map(String), [], `uncaught errors in ${name}'s page`)
    }
  })
})
