// The history panel end to end: the built demo, served by the real chorus binary (an open
// server, no API key), in real headless Chromium. Two users on one document; one saves a
// version, both write more, the version's preview marks the later text as inserted since (and a
// removed character as deleted), and a restore brings it back; both editors must then show exactly the version's text.

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomUUID } from 'node:crypto'
import { startChorus } from './chorus.mjs'
import { SYNC_TIMEOUT_MS, editorText, launchBrowser, openUser, waitForText } from './browser.mjs'

const DIST = fileURLToPath(new URL('../dist', import.meta.url))
const SCREENSHOTS = fileURLToPath(new URL('./screenshots', import.meta.url))

const DESKTOP = { width: 1180, height: 760 }

const DRAFT_TEXT = 'Release plan\n\n- Freeze the API\n- Tag v1.0'
/** The draft as it is after Grace's edit. */
const EDITED_TEXT = DRAFT_TEXT.replace('v1.0', 'v2.0')
const LATER_TEXT = '\n- Announce on the blog'
const LABEL = 'First draft'

/**
 * The Tiptap document as its editor shows it, one line per block, without other people's
 * carets. Runs in the page, so it must be self-contained.
 */
function visibleRichText () {
  return Array.from(document.querySelectorAll('#editor .tiptap > *'), block => {
    const copy = /** @type {Element} */ (block.cloneNode(true))
    copy.querySelectorAll('.collaboration-carets__caret').forEach(node => node.remove())
    return copy.textContent ?? ''
  }).join('\n')
}

/**
 * @param {import('playwright-core').Page} page
 * @param {string} expected
 */
async function waitForRichText (page, expected) {
  try {
    await page.waitForFunction(`(${visibleRichText})() === ${JSON.stringify(expected)}`, undefined, { timeout: SYNC_TIMEOUT_MS })
  } catch (error) {
    const shown = await page.evaluate(visibleRichText)
    throw new Error(`editor never showed ${JSON.stringify(expected)}; it shows ${JSON.stringify(shown)}`, { cause: error })
  }
}

describe('history panel against the chorus binary', { timeout: 180_000 }, () => {
  /** @type {string} */ let dataDir
  /** @type {import('./chorus.mjs').RunningChorus} */ let server
  /** @type {import('playwright-core').Browser} */ let browser
  /** @type {Awaited<ReturnType<typeof openUser>>} */ let ada
  /** @type {Awaited<ReturnType<typeof openUser>>} */ let grace
  // A slash and a space: the API path must carry the name percent-encoded.
  const doc = `e2e/history ${randomUUID().slice(0, 8)}`
  /** @type {Awaited<ReturnType<typeof openUser>>[]} the Tiptap page's users */
  const rich = []

  before(async () => {
    assert.ok(existsSync(join(DIST, 'index.html')), `no build in ${DIST}: run \`npm run build\` first`)
    await mkdir(SCREENSHOTS, { recursive: true })
    dataDir = await mkdtemp(join(tmpdir(), 'chorus-web-demo-history-'))
    server = await startChorus({ dataDir, staticDir: DIST })
    browser = await launchBrowser()
    ada = await openUser(browser, { url: server.url, doc, name: 'Ada Lovelace', color: '#2563eb', viewport: DESKTOP })
    grace = await openUser(browser, { url: server.url, doc, name: 'Grace Hopper', color: '#c026d3', viewport: DESKTOP })
  })

  after(async () => {
    await browser?.close()
    server?.kill()
    if (dataDir) await rm(dataDir, { recursive: true, force: true })
  })

  it('saves a labelled version and lists it with its time and author', async () => {
    await ada.page.locator('.cm-content').click()
    await ada.page.keyboard.type(DRAFT_TEXT)
    // Grace seeing the text means the server has it, so the version will contain it.
    await waitForText(grace.page, DRAFT_TEXT)

    await ada.page.locator('.version-label').fill(LABEL)
    await ada.page.getByRole('button', { name: 'Save version' }).click()
    const saved = ada.page.locator('.version', { hasText: LABEL })
    await saved.waitFor({ timeout: SYNC_TIMEOUT_MS })
    // Open server: the WebSocket's edits are attributed to "anonymous".
    assert.match(await saved.locator('.version-authors').textContent() ?? '', /^by anonymous$/)
    assert.ok(await saved.locator('time').getAttribute('datetime'), 'the version shows when it was made')
  })

  it('previews the version with what was written since marked as inserted', async () => {
    // Grace turns "v1.0" into "v2.0": one character removed and one inserted since the version.
    await grace.page.locator('.cm-content').click()
    await grace.page.keyboard.press('Control+End')
    for (let i = 0; i < 3; i++) await grace.page.keyboard.press('Backspace')
    await grace.page.keyboard.type('2.0')
    await waitForText(ada.page, EDITED_TEXT)
    await ada.page.locator('.cm-content').click()
    await ada.page.keyboard.press('Control+End')
    await ada.page.keyboard.type(LATER_TEXT)
    await waitForText(grace.page, EDITED_TEXT + LATER_TEXT)

    await ada.page.locator('.version', { hasText: LABEL }).click()
    const preview = ada.page.locator('.version-preview')
    await preview.waitFor({ state: 'visible', timeout: SYNC_TIMEOUT_MS })
    const inserted = await preview.locator('.preview-text ins').allTextContents()
    const deleted = await preview.locator('.preview-text del').allTextContents()
    assert.deepEqual(inserted, ['2', LATER_TEXT], 'the later text is marked as inserted since the version')
    assert.deepEqual(deleted, ['1'], "Grace's deletion is marked where it was")
    // The preview reads as the version with both changes laid over it at their places.
    assert.equal(await preview.locator('.preview-text').textContent(), DRAFT_TEXT.replace('v1.0', 'v12.0') + LATER_TEXT)
    // Marked runs are drawn in the "added" and "removed" colours, not as plain text.
    const background = (/** @type {string} */ tag) =>
      preview.locator(`.preview-text ${tag}`).first().evaluate(el => getComputedStyle(el).backgroundColor)
    assert.equal(await background('ins'), 'rgb(220, 252, 231)')
    assert.equal(await background('del'), 'rgb(254, 226, 226)')
    await ada.page.screenshot({ path: join(SCREENSHOTS, 'history-panel.png') })
  })

  it('restores the version, and both users see exactly its text', async () => {
    await ada.page.getByRole('button', { name: 'Restore this version' }).click()
    await waitForText(grace.page, DRAFT_TEXT)
    await waitForText(ada.page, DRAFT_TEXT)
    assert.equal(await editorText(grace.page), DRAFT_TEXT)
    assert.equal(await editorText(ada.page), DRAFT_TEXT)
    // The restore is recorded as a version of its own, on top of the list.
    await ada.page.locator('.versions li:first-child .version', { hasText: 'After a restore' })
      .waitFor({ timeout: SYNC_TIMEOUT_MS })
    assert.equal(await ada.page.locator('.version-preview').isVisible(), false)
  })

  it('does the same on the Tiptap page, block by block', async () => {
    const richDoc = `e2e/rich history ${randomUUID().slice(0, 8)}`
    const open = (/** @type {string} */ name, /** @type {string} */ color) =>
      openUser(browser, { url: server.url, doc: richDoc, name, color, viewport: DESKTOP, path: '/tiptap.html' })
    const [adaRich, graceRich] = [await open('Ada Lovelace', '#2563eb'), await open('Grace Hopper', '#c026d3')]
    rich.push(adaRich, graceRich)

    await adaRich.page.locator('.tiptap').click()
    await adaRich.page.keyboard.type('Agenda')
    await adaRich.page.keyboard.press('Enter')
    await adaRich.page.keyboard.type('Budget review')
    await waitForRichText(graceRich.page, 'Agenda\nBudget review')
    await adaRich.page.locator('.version-label').fill('Rich draft')
    await adaRich.page.getByRole('button', { name: 'Save version' }).click()
    await adaRich.page.locator('.version', { hasText: 'Rich draft' }).waitFor({ timeout: SYNC_TIMEOUT_MS })

    // Grace extends a paragraph, Ada adds one.
    await graceRich.page.locator('.tiptap').click()
    await graceRich.page.keyboard.press('Control+End')
    await graceRich.page.keyboard.type(' and vote')
    await waitForRichText(adaRich.page, 'Agenda\nBudget review and vote')
    await adaRich.page.locator('.tiptap').click()
    await adaRich.page.keyboard.press('Control+End')
    await adaRich.page.keyboard.press('Enter')
    await adaRich.page.keyboard.type('Next steps')
    await waitForRichText(graceRich.page, 'Agenda\nBudget review and vote\nNext steps')

    await adaRich.page.locator('.version', { hasText: 'Rich draft' }).click()
    const preview = adaRich.page.locator('.version-preview')
    await preview.waitFor({ state: 'visible', timeout: SYNC_TIMEOUT_MS })
    assert.deepEqual(await preview.locator('.preview-text ins').allTextContents(), [' and vote\nNext steps'])
    assert.deepEqual(await preview.locator('.preview-text del').allTextContents(), [])
    assert.equal(await preview.locator('.preview-text').textContent(), 'Agenda\nBudget review and vote\nNext steps')

    await adaRich.page.getByRole('button', { name: 'Restore this version' }).click()
    await waitForRichText(graceRich.page, 'Agenda\nBudget review')
    await waitForRichText(adaRich.page, 'Agenda\nBudget review')
  })

  it('raised no uncaught errors in any page', () => {
    for (const { name, errors } of [ada, grace, ...rich]) {
      assert.deepEqual(errors.map(String), [], `uncaught errors in ${name}'s page`)
    }
  })
})
