// Wires the page together: which document, who we are, the connection and the editor.

import './style.css'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { docHref, docNameFromSearch, randomDocName, roomPath, sameOriginServerUrl } from './doc-name.js'
import { colorClash, guardRemoteUsers, loadIdentity } from './identity.js'
import { trackConnection } from './connection-status.js'
import { watchPresence } from './presence.js'
import { createEditor } from './editor.js'

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
function element (id) {
  const found = document.getElementById(id)
  if (found === null) throw new Error(`index.html lacks #${id}`)
  return found
}

const fromUrl = docNameFromSearch(window.location.search)
const docName = fromUrl ?? randomDocName()
if (fromUrl === null) {
  // Put the generated name in the address bar so copying the URL shares this document.
  window.history.replaceState(null, '', docHref(docName))
}
document.title = `${docName} · Chorus`
element('doc-name').textContent = docName
element('new-doc').setAttribute('href', docHref(randomDocName()))

const ydoc = new Y.Doc()
// VITE_CHORUS_URL exists for odd deployments; normally the page talks to the server it came from.
const serverUrl = import.meta.env.VITE_CHORUS_URL || sameOriginServerUrl(window.location)
const provider = new WebsocketProvider(serverUrl, roomPath(docName), ydoc, {
  // Without this, two tabs of one browser would sync through a BroadcastChannel and keep working
  // while the server is down; the demo exists to show the server, so every tab talks to it.
  disableBc: true
})

guardRemoteUsers(provider.awareness)
const identity = loadIdentity({ local: window.localStorage, session: window.sessionStorage })
provider.awareness.setLocalStateField('user', identity.user())

provider.on('status', (/** @type {{ status: string }} */ { status }) => {
  if (status === 'connected') {
    // Re-announce ourselves with a higher clock. When we dropped off, the server told everyone our
    // state was removed at our last clock, and peers ignore a state whose clock is not newer:
    // without this they would not list us again until our next cursor move or 15 s renewal.
    provider.awareness.setLocalState(provider.awareness.getLocalState())
  }
})

const nameInput = /** @type {HTMLInputElement} */ (element('name'))
nameInput.value = identity.chosenName()
nameInput.placeholder = identity.tabName
nameInput.addEventListener('input', () => {
  provider.awareness.setLocalStateField('user', identity.rename(nameInput.value))
})

watchPresence(provider.awareness, element('presence'), element('presence-count'))
provider.awareness.on('change', () => {
  // Colours are picked at random per tab, so two people can get the same one; their cursors
  // would then be told apart only by the name label.
  const taken = colorClash(provider.awareness.getStates(), provider.awareness.clientID)
  if (taken !== null) provider.awareness.setLocalStateField('user', identity.recolor(taken))
})

const statusPill = element('status')
const toggle = element('toggle-connection')
const connection = trackConnection(provider, ydoc, status => {
  statusPill.dataset.state = status.state
  statusPill.title = status.detail
  element('status-label').textContent = status.label
  toggle.textContent = provider.shouldConnect ? 'Work offline' : 'Go online'
})
toggle.addEventListener('click', () => {
  if (provider.shouldConnect) provider.disconnect()
  else provider.connect()
  connection.refresh()
})

const share = element('share')
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

createEditor(element('editor'), ydoc.getText('codemirror'), provider.awareness).focus()
