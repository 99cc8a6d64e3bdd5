// The history panel: the document's versions (time, label, authors), "Save version", a preview
// of one version with what changed since marked, and "Restore", all over the server's HTTP API
// (`/api/v1/docs/{doc}/versions`). A restore is an ordinary edit on the server, so this tab
// and every other one see the text change through their WebSocket like anyone's typing.

import { versionTitle } from './history-diff.js'

/** How often the list is fetched again, so versions saved elsewhere show up. */
const REFRESH_MS = 30_000

/** The panel's parts; static markup (no data goes in here), shared by both pages. */
const MARKUP = `
  <h2 id="history-title">History</h2>
  <form class="save-version">
    <input class="field version-label" type="text" maxlength="200" placeholder="Label" aria-label="Version label" />
    <button type="submit" class="button">Save version</button>
  </form>
  <p class="hint history-message" role="status" aria-live="polite"></p>
  <ol class="versions" aria-label="Versions, newest first"></ol>
  <div class="version-preview" hidden>
    <div class="preview-head">
      <strong class="preview-title"></strong>
      <button type="button" class="button close-preview" aria-label="Close the preview">Close</button>
    </div>
    <p class="hint">Compared with the document now: <ins>added since</ins>, <del>removed since</del>.</p>
    <pre class="preview-text" aria-label="The version, with changes since marked"></pre>
    <button type="button" class="button primary wide restore-version">Restore this version</button>
  </div>
`

/**
 * @typedef {{ id: string, created_ms: number, kind: string, label?: string,
 *             restored_from?: string, authors: string[] }} VersionMeta
 */

/**
 * Calls the history routes on the server that served the page. The demo's server is open, so no
 * credentials are sent; a server with tokens takes the WebSocket's token as a bearer.
 * @param {string} docName
 */
export function historyApi (docName) {
  const base = `/api/v1/docs/${encodeURIComponent(docName)}/versions`
  const call = async (/** @type {string} */ path, /** @type {RequestInit} */ init = {}) => {
    const response = await fetch(base + path, init)
    const body = await response.json().catch(() => null)
    if (!response.ok) throw new Error(body?.message ?? `the server answered ${response.status}`)
    return body
  }
  return {
    /** @returns {Promise<VersionMeta[]>} newest first */
    list: async () => (await call('?limit=50')).versions,
    /** @param {string} label */
    save: (label) => call('', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(label === '' ? {} : { label })
    }),
    /** @param {string} id */
    read: (id) => call(`/${encodeURIComponent(id)}`),
    /** @param {string} id what changed from version `id` to the live document */
    diffToCurrent: (id) => call(`/${encodeURIComponent(id)}/diff/current`),
    /** @param {string} id */
    restore: (id) => call(`/${encodeURIComponent(id)}/restore`, { method: 'POST' })
  }
}

/**
 * Fills `panel` (an empty `.history-panel` section) and runs it.
 * @param {HTMLElement} panel
 * @param {string} docName
 * @param {(content: any, diff: any) => import('./history-diff.js').Segment[]} compare
 *   a version's content JSON and the diff from it to the live document → what the preview
 *   shows; the page knows which root its editor uses and what shape it has
 */
export function mountHistoryPanel (panel, docName, compare) {
  panel.innerHTML = MARKUP
  const api = historyApi(docName)
  const part = (/** @type {string} */ selector) => {
    const found = panel.querySelector(selector)
    if (found === null) throw new Error(`the history panel lacks ${selector}`)
    return /** @type {HTMLElement} */ (found)
  }
  const list = part('.versions')
  const form = /** @type {HTMLFormElement} */ (part('.save-version'))
  const label = /** @type {HTMLInputElement} */ (part('.version-label'))
  const message = part('.history-message')
  const preview = part('.version-preview')
  const previewTitle = part('.preview-title')
  const previewText = part('.preview-text')
  const restoreButton = /** @type {HTMLButtonElement} */ (part('.restore-version'))
  /** @type {VersionMeta | null} */
  let previewed = null

  const say = (/** @type {string} */ text) => { message.textContent = text }

  const refresh = async () => {
    try {
      renderList(await api.list())
    } catch (error) {
      say(`Could not load versions: ${/** @type {Error} */ (error).message}`)
    }
  }

  /** @param {VersionMeta[]} versions */
  const renderList = (versions) => {
    list.replaceChildren(...versions.map(version => {
      const item = document.createElement('li')
      const button = document.createElement('button')
      button.type = 'button'
      button.className = 'version'
      button.dataset.id = version.id
      button.setAttribute('aria-pressed', String(previewed?.id === version.id))
      const title = document.createElement('span')
      title.className = 'version-title'
      title.textContent = versionTitle(version)
      const time = document.createElement('time')
      time.dateTime = new Date(version.created_ms).toISOString()
      time.textContent = new Date(version.created_ms).toLocaleString([], { dateStyle: 'short', timeStyle: 'medium' })
      const authors = document.createElement('span')
      authors.className = 'version-authors'
      authors.textContent = version.authors.length > 0 ? `by ${version.authors.join(', ')}` : 'no edits since the previous one'
      button.append(title, time, authors)
      button.addEventListener('click', () => { show(version) })
      item.append(button)
      return item
    }))
    if (versions.length === 0) say('No versions yet: save one.')
  }

  /** @param {VersionMeta} version */
  const show = async (version) => {
    previewed = version
    for (const button of list.querySelectorAll('.version')) {
      button.setAttribute('aria-pressed', String(/** @type {HTMLElement} */ (button).dataset.id === version.id))
    }
    try {
      const [content, diff] = await Promise.all([api.read(version.id), api.diffToCurrent(version.id)])
      if (previewed !== version) return // another version was clicked meanwhile
      previewText.replaceChildren(...compare(content.content, diff).map(({ kind, text }) => {
        const run = document.createElement(kind === 'same' ? 'span' : kind)
        run.textContent = text
        return run
      }))
      previewTitle.textContent = `${versionTitle(version)} · ${new Date(version.created_ms).toLocaleTimeString()}`
      preview.hidden = false
      say('')
    } catch (error) {
      say(`Could not show that version: ${/** @type {Error} */ (error).message}`)
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    try {
      const saved = await api.save(label.value.trim())
      label.value = ''
      say(`Saved “${versionTitle(saved)}”.`)
      await refresh()
    } catch (error) {
      say(`Could not save: ${/** @type {Error} */ (error).message}`)
    }
  })

  restoreButton.addEventListener('click', async () => {
    if (previewed === null) return
    const version = previewed
    restoreButton.disabled = true
    try {
      await api.restore(version.id)
      previewed = null
      preview.hidden = true
      say(`Restored “${versionTitle(version)}” for everyone.`)
      await refresh()
    } catch (error) {
      say(`Could not restore: ${/** @type {Error} */ (error).message}`)
    } finally {
      restoreButton.disabled = false
    }
  })

  part('.close-preview').addEventListener('click', () => {
    previewed = null
    preview.hidden = true
    for (const button of list.querySelectorAll('.version')) button.setAttribute('aria-pressed', 'false')
  })

  refresh()
  setInterval(() => { if (document.visibilityState === 'visible') refresh() }, REFRESH_MS)
}
