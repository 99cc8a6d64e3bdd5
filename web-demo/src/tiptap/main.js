// Wires the rich-text page together: which document, who we are, the Hocuspocus provider, the
// saved state and the Tiptap editor.

import '../style.css'
import './tiptap.css'
import * as Y from 'yjs'
import { HocuspocusProvider } from '@hocuspocus/provider'
import { sameOriginServerUrl } from '../doc-name.js'
import { guardRemoteUsers, loadIdentity } from '../identity.js'
import { element, openDocumentFromUrl, shareIdentity, wireShareButton } from '../page.js'
import { watchPresence } from '../presence.js'
import { trackProvider } from './provider-status.js'
import { createRichTextEditor, createToolbar } from './editor.js'
import { mountHistoryPanel } from '../history-panel.js'
import { joinLines, treeLines } from '../history-diff.js'

const docName = openDocumentFromUrl('Chorus rich text')

// VITE_CHORUS_HOCUSPOCUS_URL exists for odd deployments; normally the page talks to the server it
// came from, on the endpoint where Chorus speaks Hocuspocus's protocol.
const serverUrl = import.meta.env.VITE_CHORUS_HOCUSPOCUS_URL || sameOriginServerUrl(window.location, '/hocuspocus')
// Hocuspocus carries the document name inside every frame, so it needs no URL encoding.
const provider = new HocuspocusProvider({ url: serverUrl, name: docName, document: new Y.Doc() })
const awareness = /** @type {import('y-protocols/awareness').Awareness} */ (provider.awareness)

guardRemoteUsers(awareness)
const identity = loadIdentity({ local: window.localStorage, session: window.sessionStorage })
shareIdentity(awareness, identity, /** @type {HTMLInputElement} */ (element('name')))
watchPresence(awareness, element('presence'), element('presence-count'))
provider.on('synced', () => {
  // Re-announce ourselves with a higher clock after every (re)connect: peers were told our state
  // was removed at our last clock, and ignore a state whose clock is not newer.
  awareness.setLocalState(awareness.getLocalState())
})

const statusPill = element('status')
const saved = element('saved')
trackProvider(provider, {
  onConnection: status => {
    statusPill.dataset.state = status.state
    statusPill.title = status.detail
    element('status-label').textContent = status.label
  },
  onSave: save => {
    saved.dataset.state = save.state
    saved.title = save.detail
    saved.textContent = save.label
  }
})

wireShareButton(element('share'))

const editor = createRichTextEditor(element('editor'), provider, identity.user())
createToolbar(element('toolbar'), editor)
editor.commands.focus()
// The preview shows the document's blocks as lines; 'default' is the fragment Collaboration edits.
mountHistoryPanel(element('history'), docName, (content, diff) =>
  joinLines(treeLines(content.roots.default, diff.roots.default)))
