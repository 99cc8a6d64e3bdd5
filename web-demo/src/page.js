// What both editor pages share: the document named in the URL, the share button, and this tab's
// name and colour in the awareness states.

import { docHref, docNameFromSearch, randomDocName } from './doc-name.js'
import { colorClash } from './identity.js'

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
export function element (id) {
  const found = document.getElementById(id)
  if (found === null) throw new Error(`the page lacks #${id}`)
  return found
}

/**
 * The document this tab edits, named by the URL or made up, and shown in the header.
 * @param {string} pageName what the tab title says after the document name
 * @returns {string}
 */
export function openDocumentFromUrl (pageName) {
  const fromUrl = docNameFromSearch(window.location.search)
  const docName = fromUrl ?? randomDocName()
  if (fromUrl === null) {
    // Put the generated name in the address bar so copying the URL shares this document.
    window.history.replaceState(null, '', docHref(docName))
  }
  document.title = `${docName} · ${pageName}`
  element('doc-name').textContent = docName
  element('new-doc').setAttribute('href', docHref(randomDocName()))
  return docName
}

/** @param {HTMLElement} share */
export function wireShareButton (share) {
  share.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(window.location.href)
      share.textContent = 'Link copied'
    } catch {
      // Clipboard access needs a secure context and permission; the address bar still has the link.
      share.textContent = 'Copy the address bar'
    }
    setTimeout(() => { share.textContent = 'Copy link' }, 2000)
  })
}

/**
 * Publishes this tab's `user` field, follows renames typed into `nameInput`, and moves to a free
 * colour when someone else already wears ours.
 * @param {import('y-protocols/awareness').Awareness} awareness
 * @param {ReturnType<typeof import('./identity.js').loadIdentity>} identity
 * @param {HTMLInputElement} nameInput
 */
export function shareIdentity (awareness, identity, nameInput) {
  awareness.setLocalStateField('user', identity.user())
  nameInput.value = identity.chosenName()
  nameInput.placeholder = identity.tabName
  nameInput.addEventListener('input', () => {
    awareness.setLocalStateField('user', identity.rename(nameInput.value))
  })
  awareness.on('change', () => {
    // Colours are picked at random per tab, so two people can get the same one; their cursors
    // would then be told apart only by the name label.
    const taken = colorClash(awareness.getStates(), awareness.clientID)
    if (taken !== null) awareness.setLocalStateField('user', identity.recolor(taken))
  })
}
