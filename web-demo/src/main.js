// Wires the page together: which document, who we are, the connection and the editor.

import './style.css'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { roomPath, sameOriginServerUrl } from './doc-name.js'
import { guardRemoteUsers, loadIdentity } from './identity.js'
import { element, openDocumentFromUrl, shareIdentity, wireShareButton } from './page.js'
import { trackConnection } from './connection-status.js'
import { watchPresence } from './presence.js'
import { createEditor } from './editor.js'
import { mountHistoryPanel } from './history-panel.js'
import { diffSegments, textOfNode } from './history-diff.js'

const docName = openDocumentFromUrl('Chorus')

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

provider.on('status', (/** @type {{ status: string }} */ { status }) => {
  if (status === 'connected') {
    // Re-announce ourselves with a higher clock. When we dropped off, the server told everyone our
    // state was removed at our last clock, and peers ignore a state whose clock is not newer:
    // without this they would not list us again until our next cursor move or 15 s renewal.
    provider.awareness.setLocalState(provider.awareness.getLocalState())
  }
})

shareIdentity(provider.awareness, identity, /** @type {HTMLInputElement} */ (element('name')))
watchPresence(provider.awareness, element('presence'), element('presence-count'))

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

wireShareButton(element('share'))

/** The shared text's name in the document: y-codemirror's convention, and the history panel's root. */
const TEXT_ROOT = 'codemirror'
createEditor(element('editor'), ydoc.getText(TEXT_ROOT), provider.awareness).focus()
mountHistoryPanel(element('history'), docName, (content, diff) =>
  diffSegments(textOfNode(content.roots[TEXT_ROOT]), diff.roots[TEXT_ROOT]))
