// Headless Debian Chromium driven by playwright-core, and the page-level helpers the tests use.

import { chromium } from 'playwright-core'

/** Debian's build; playwright-core never downloads a browser of its own. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** How long a page may take to show what another page did, or to (re)connect. */
export const SYNC_TIMEOUT_MS = 15_000

export function launchBrowser () {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true })
}

/**
 * One user: their own browser context, so no storage (and no BroadcastChannel) is shared with
 * the other users, and every byte between them goes through the server.
 * @param {import('playwright-core').Browser} browser
 * @param {{ url: string, doc: string, name: string, color: string, viewport: { width: number, height: number }, path?: string }} options
 *   `color` is a palette colour, preset in the tab's storage as if the tab had drawn it, so that
 *   screenshots are reproducible (the draw itself is covered by the unit tests). `path` is the
 *   page: `/` (CodeMirror, the default) or `/tiptap.html`.
 */
export async function openUser (browser, { url, doc, name, color, viewport, path = '/' }) {
  const context = await browser.newContext({ viewport })
  await context.addInitScript(([key, value]) => {
    // about:blank, where a test parks a page, has no storage of its own and throws.
    try { window.sessionStorage.setItem(key, value) } catch {}
  }, ['chorus.tabColor', color])
  const page = await context.newPage()
  /** @type {Error[]} */
  const errors = []
  page.on('pageerror', error => errors.push(error))
  await page.goto(`${url}${path}?doc=${encodeURIComponent(doc)}`)
  await page.locator('#name').fill(name)
  await waitForState(page, 'connected')
  return { page, context, name, errors }
}

/**
 * @param {import('playwright-core').Page} page
 * @param {string} state one of the status pill's data-state values
 */
export async function waitForState (page, state) {
  await page.locator(`#status[data-state="${state}"]`).waitFor({ timeout: SYNC_TIMEOUT_MS })
}

/**
 * The document text as the editor shows it. Runs in the page, so it must be self-contained.
 * Widgets (remote carets with their name labels, the placeholder) are not document text.
 */
function visibleEditorText () {
  const lines = document.querySelectorAll('.cm-content > .cm-line')
  return Array.from(lines, line => {
    const copy = /** @type {Element} */ (line.cloneNode(true))
    copy.querySelectorAll('[contenteditable="false"], .cm-widgetBuffer').forEach(node => node.remove())
    return (copy.textContent ?? '').replaceAll('\u2060', '')
  }).join('\n')
}

/** @param {import('playwright-core').Page} page */
export function editorText (page) {
  return page.evaluate(visibleEditorText)
}

/**
 * Polls until the editor shows exactly `expected`.
 * @param {import('playwright-core').Page} page
 * @param {string} expected
 */
export async function waitForText (page, expected) {
  try {
    await page.waitForFunction(`(${visibleEditorText})() === ${JSON.stringify(expected)}`, undefined, { timeout: SYNC_TIMEOUT_MS })
  } catch (error) {
    throw new Error(`editor never showed ${JSON.stringify(expected)}; it shows ${JSON.stringify(await editorText(page))}`, { cause: error })
  }
}

/**
 * Polls until the "here now" list names exactly `names` (in any order).
 * @param {import('playwright-core').Page} page
 * @param {string[]} names
 */
export async function waitForPresence (page, names) {
  const expected = [...names].sort()
  const shown = () => Array.from(document.querySelectorAll('#presence .person-name'), el => el.textContent).sort()
  try {
    await page.waitForFunction(`JSON.stringify((${shown})()) === ${JSON.stringify(JSON.stringify(expected))}`, undefined, { timeout: SYNC_TIMEOUT_MS })
  } catch (error) {
    throw new Error(`presence list never showed ${expected.join(', ')}; it shows ${(await page.evaluate(shown)).join(', ')}`, { cause: error })
  }
}

/**
 * The remote caret y-codemirror draws for `name`, once it is on screen.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
export async function remoteCaret (page, name) {
  const caret = page.locator('.cm-ySelectionCaret').filter({ has: page.locator('.cm-ySelectionInfo', { hasText: name }) })
  await caret.waitFor({ state: 'visible', timeout: SYNC_TIMEOUT_MS })
  return caret
}

/**
 * Puts screenshots next to each other, each with a caption, by rendering them in a blank page:
 * no image library needed.
 * @param {import('playwright-core').Browser} browser
 * @param {{ png: Buffer, caption: string }[]} shots
 * @returns {Promise<Buffer>}
 */
export async function sideBySide (browser, shots) {
  const page = await browser.newPage({ viewport: { width: 400, height: 300 } })
  try {
    const figures = shots.map(({ png, caption }) => `
      <figure><div class="frame"><img src="data:image/png;base64,${png.toString('base64')}"></div>
      <figcaption>${caption.replace(/[<&]/g, c => (c === '<' ? '&lt;' : '&amp;'))}</figcaption></figure>`).join('')
    await page.setContent(`<!doctype html><style>
      body { margin: 0; display: inline-flex; gap: 32px; align-items: flex-start; padding: 32px;
             background: linear-gradient(135deg, #312e81, #831843); font-family: "DejaVu Sans", sans-serif; }
      figure { margin: 0; }
      .frame { border-radius: 10px; overflow: hidden; box-shadow: 0 12px 40px rgb(0 0 0 / 35%); line-height: 0; }
      figcaption { margin-top: 12px; color: #fff; font-size: 15px; font-weight: 600; text-align: center; }
    </style>${figures}`)
    await page.waitForFunction(() => Array.from(document.images).every(img => img.complete && img.naturalWidth > 0))
    const size = await page.evaluate(() => {
      const box = document.body.getBoundingClientRect()
      return { width: Math.ceil(box.width), height: Math.ceil(box.height) }
    })
    await page.setViewportSize(size)
    return await page.screenshot()
  } finally {
    await page.close()
  }
}
