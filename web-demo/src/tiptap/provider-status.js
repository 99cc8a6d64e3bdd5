// What the Tiptap page says about its Hocuspocus provider: the connection pill (the same states
// as the CodeMirror page) and whether this tab's edits are saved.
//
// "Saved" is the server's word, not a guess: Chorus sends Hocuspocus's SyncStatus(1) for an update
// only once it is in the update log under the server's --fsync policy, and the provider counts
// every update it sends until that answer arrives (`unsyncedChanges`). Zero means stored.

import { describeStatus } from '../connection-status.js'

/**
 * @typedef {'loading' | 'saved' | 'saving' | 'unsaved'} SaveState
 * @typedef {{ state: SaveState, label: string, detail: string }} Save
 * @typedef {{
 *   loaded: boolean,          // the document has been synced with the server at least once
 *   connected: boolean,       // the socket is open
 *   unsyncedChanges: number   // updates sent (or waiting to be) that the server has not stored yet
 * }} SaveFacts
 */

/**
 * @param {SaveFacts} facts
 * @returns {Save}
 */
export function describeSave ({ loaded, connected, unsyncedChanges }) {
  if (!loaded) {
    return { state: 'loading', label: 'Loading…', detail: 'Fetching the document from the server.' }
  }
  if (unsyncedChanges === 0) {
    return { state: 'saved', label: 'Saved', detail: 'The server has stored every edit made in this tab.' }
  }
  if (connected) {
    return { state: 'saving', label: 'Saving…', detail: 'Waiting for the server to store the latest edits.' }
  }
  return {
    state: 'unsaved',
    label: 'Not saved',
    detail: 'The server is out of reach. Edits are kept in this tab and saved when it is back.'
  }
}

/**
 * Watches a Hocuspocus provider and reports the connection pill and the save state each time
 * either changes.
 * @param {import('@hocuspocus/provider').HocuspocusProvider} provider
 * @param {{
 *   onConnection: (status: import('../connection-status.js').Status) => void,
 *   onSave: (save: Save) => void
 * }} listeners
 * @param {Window} [win]
 */
export function trackProvider (provider, { onConnection, onSave }, win = window) {
  let connected = false
  let loaded = false
  let browserOnline = win.navigator.onLine
  let lastConnection = ''
  let lastSave = ''

  const refresh = () => {
    const unsyncedChanges = provider.unsyncedChanges
    const connection = describeStatus({
      synced: connected && provider.isSynced,
      everSynced: loaded,
      // The provider retries every close, and this page has no "work offline" switch.
      wantsConnection: true,
      closedByServer: false,
      browserOnline,
      pendingEdits: !connected && unsyncedChanges > 0
    })
    if (connection.state !== lastConnection) {
      lastConnection = connection.state
      onConnection(connection)
    }
    const save = describeSave({ loaded, connected, unsyncedChanges })
    if (save.state !== lastSave) {
      lastSave = save.state
      onSave(save)
    }
  }

  provider.on('status', (/** @type {{ status: string }} */ { status }) => {
    connected = status === 'connected'
    refresh()
  })
  provider.on('synced', () => { loaded = true; refresh() })
  provider.on('unsyncedChanges', refresh)
  win.addEventListener('online', () => { browserOnline = true; refresh() })
  win.addEventListener('offline', () => { browserOnline = false; refresh() })
  refresh()
}
