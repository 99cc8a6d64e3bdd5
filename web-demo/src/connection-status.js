// What the status pill says about the connection to the server.
//
// y-websocket exposes several independent facts (socket open, synced, the user's wish to be
// online, a permanent close by the server); this module folds them into the one state a person
// cares about, and tracks the fact y-websocket does not: whether this tab holds edits the server
// has not seen yet.

/**
 * @typedef {'connecting' | 'connected' | 'reconnecting' | 'pending' | 'offline' | 'closed'} ConnectionState
 * @typedef {{ state: ConnectionState, label: string, detail: string }} Status
 * @typedef {{
 *   synced: boolean,          // the server answered our state vector: both sides have each other's edits
 *   everSynced: boolean,      // distinguishes a first connect from a lost connection
 *   wantsConnection: boolean, // false after "Work offline" or a permanent close by the server
 *   closedByServer: boolean,  // closed with a 44xx code, which y-websocket 3.1 does not retry
 *   browserOnline: boolean,   // navigator.onLine
 *   pendingEdits: boolean     // local edits made while not synced
 * }} ConnectionFacts
 */

/**
 * @param {ConnectionFacts} facts
 * @returns {Status}
 */
export function describeStatus (facts) {
  if (facts.synced) {
    return { state: 'connected', label: 'Connected', detail: 'Edits are shared as you type.' }
  }
  if (facts.closedByServer) {
    return {
      state: 'closed',
      label: 'Disconnected by server',
      detail: facts.pendingEdits
        ? 'The server closed this session. Edits made since then are only in this tab.'
        : 'The server closed this session. Reload the page to try again.'
    }
  }
  if (facts.pendingEdits) {
    return {
      state: 'pending',
      label: 'Offline · edits pending',
      detail: 'Your edits are kept in this tab and will merge when the connection is back.'
    }
  }
  if (!facts.wantsConnection || !facts.browserOnline) {
    return { state: 'offline', label: 'Offline', detail: 'Edits made now will merge when you go online.' }
  }
  if (facts.everSynced) {
    return { state: 'reconnecting', label: 'Reconnecting…', detail: 'The connection dropped; retrying.' }
  }
  return { state: 'connecting', label: 'Connecting…', detail: 'Opening the document.' }
}

/**
 * Watches a provider and its document and calls `onChange` with every new status.
 * @param {import('y-websocket').WebsocketProvider} provider
 * @param {import('yjs').Doc} doc
 * @param {(status: Status) => void} onChange
 * @param {Window} [win]
 * @returns {{ refresh: () => void, current: () => Status }}
 */
export function trackConnection (provider, doc, onChange, win = window) {
  let everSynced = false
  let closedByServer = false
  let pendingEdits = false
  let browserOnline = win.navigator.onLine
  /** @type {Status | null} */
  let last = null

  const current = () => describeStatus({
    synced: provider.synced,
    everSynced,
    wantsConnection: provider.shouldConnect,
    closedByServer: closedByServer && !provider.shouldConnect,
    browserOnline,
    pendingEdits
  })
  const refresh = () => {
    const next = current()
    if (last === null || next.state !== last.state || next.label !== last.label) {
      last = next
      onChange(next)
    }
  }

  provider.on('sync', (/** @type {boolean} */ isSynced) => {
    if (isSynced) {
      everSynced = true
      closedByServer = false
      // The server sends its step 1 as soon as we connect and we answer it with every update it
      // lacks, so by the time its step 2 marks us synced, our offline edits are on the wire.
      pendingEdits = false
    }
    refresh()
  })
  provider.on('status', refresh)
  provider.on('closed', () => { closedByServer = true; refresh() })
  doc.on('update', (/** @type {Uint8Array} */ _update, /** @type {unknown} */ origin) => {
    // Updates whose origin is the provider came from the server; everything else is this tab.
    if (origin !== provider && !provider.synced && !pendingEdits) {
      pendingEdits = true
      refresh()
    }
  })
  win.addEventListener('online', () => { browserOnline = true; refresh() })
  win.addEventListener('offline', () => { browserOnline = false; refresh() })

  refresh()
  return { refresh, current }
}
