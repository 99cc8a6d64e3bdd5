// Real `@hocuspocus/provider` clients (4.8.0, and 3.4.4 through an npm alias) against the
// server's `/hocuspocus` endpoint.

import WebSocket from 'ws'
import * as Y from 'yjs'
import * as v4 from '@hocuspocus/provider'
import * as v3 from 'hocuspocus-provider-v3'
import { waitFor } from './wait.mjs'

// Node 20 has no global WebSocket; the providers are given the polyfill explicitly too.
globalThis.WebSocket ??= WebSocket

/** The provider packages under test, by name. */
export const HOCUS_VERSIONS = { v4, v3 }

/** The Hocuspocus URL of a running `ChorusServer`. */
export function hocusUrl (server) {
  return `ws://${server.addr}/hocuspocus`
}

/**
 * One socket (`HocuspocusProviderWebsocket`), shared by any number of documents. `closes`
 * lists the close code of every close the socket saw.
 */
export class HocusSocket {
  constructor (url, { version = 'v4' } = {}) {
    const lib = HOCUS_VERSIONS[version]
    if (!lib) throw new Error(`unknown provider version ${version}`)
    this.version = version
    this.lib = lib
    this.closes = []
    // A destroyed socket's reconnect loop only notices it after its current back-off sleep
    // (up to 30 s by default), which would keep the test process alive after a server died.
    this.socket = new lib.HocuspocusProviderWebsocket({ url, WebSocketPolyfill: WebSocket, maxDelay: 500 })
    this.socket.on('close', ({ event }) => this.closes.push(event?.code ?? null))
    this.destroyed = false
  }

  destroy () {
    if (this.destroyed) return
    this.destroyed = true
    this.socket.destroy()
    // @hocuspocus/provider 3.x: a close seen before destroy() leaves a timer that calls
    // connect() (which turns reconnecting back on) `delay` (1 s) later, and destroy() cannot
    // cancel it; destroying again after it stops the retries it started.
    if (this.version === 'v3') setTimeout(() => this.socket.destroy(), 1500)
  }
}

/**
 * One document over a `HocusSocket`: a `Y.Doc`, its `HocuspocusProvider`, and what the
 * provider reported (authentication, stateless messages, unsynced-change counts, closes).
 */
export class HocusClient {
  constructor (socket, name, { token = '', user, sessionAwareness = false } = {}) {
    this.socket = socket
    this.name = name
    this.user = user
    this.doc = new Y.Doc()
    this.authenticated = []
    this.denied = []
    this.stateless = []
    this.unsynced = []
    this.closed = []
    this.provider = new socket.lib.HocuspocusProvider({
      websocketProvider: socket.socket,
      name,
      document: this.doc,
      token,
      // v4 only: the address becomes `name\0sessionId`, so one socket may carry the same
      // document twice.
      ...(sessionAwareness ? { sessionAwareness } : {}),
      onAuthenticated: ({ scope }) => this.authenticated.push(scope),
      onAuthenticationFailed: ({ reason }) => this.denied.push(reason),
      onStateless: ({ payload }) => this.stateless.push(payload),
      onUnsyncedChanges: ({ number }) => this.unsynced.push(number),
      onClose: ({ event }) => this.closed.push(event)
    })
    // Since v3 a provider on a shared socket attaches itself explicitly.
    this.provider.attach()
    if (user !== undefined) this.provider.setAwarenessField('user', { name: user })
    this.destroyed = false
  }

  get id () {
    return this.doc.clientID
  }

  text (key = 't') {
    return this.doc.getText(key)
  }

  synced (options) {
    return waitFor(`${this.describe()} to sync`, () => this.provider.synced && this.provider.isAuthenticated, {
      describe: () => `authenticated ${JSON.stringify(this.authenticated)}, denied ${JSON.stringify(this.denied)}, socket closes ${JSON.stringify(this.socket.closes)}`,
      ...options
    })
  }

  hasText (expected, key = 't', options) {
    return waitFor(`${this.describe()} text "${key}" to equal ${JSON.stringify(expected)}`,
      () => this.text(key).toString() === expected,
      { describe: () => JSON.stringify(this.text(key).toString()), ...options })
  }

  /** Resolves once the provider counts no unsynced change: every edit acknowledged. */
  acknowledged (options) {
    return waitFor(`${this.describe()} to have no unsynced changes`,
      () => this.provider.unsyncedChanges === 0,
      { describe: () => `unsyncedChanges ${this.provider.unsyncedChanges}, history ${JSON.stringify(this.unsynced.slice(-10))}`, ...options })
  }

  /** The `user.name` this client sees for `other` (a HocusClient or a y-websocket Client). */
  seenName (other) {
    return this.provider.awareness.getStates().get(other.id)?.user?.name
  }

  destroy () {
    if (this.destroyed) return
    this.destroyed = true
    this.provider.destroy()
    this.doc.destroy()
  }

  describe () {
    return `hocuspocus ${this.socket.version} client ${this.user ?? this.id} (${this.name})`
  }
}

/** A socket with one client per document name, torn down with `cleanup`. */
export function openHocus (cleanup, url, names, { version, token, user } = {}) {
  const socket = new HocusSocket(url, { version })
  cleanup.defer(() => socket.destroy())
  const clients = names.map(name => {
    const client = new HocusClient(socket, name, { token, user })
    cleanup.defer(() => client.destroy())
    return client
  })
  return { socket, clients }
}
