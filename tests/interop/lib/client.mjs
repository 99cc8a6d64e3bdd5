// Real y-websocket providers (v3.1.0, and v2.1.0 through an npm alias) set up as y-protocol.md §4 says.

import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { WebsocketProvider as WebsocketProviderV2 } from 'y-websocket-v2'
import { waitFor } from './wait.mjs'

// Node 20 has no global WebSocket, and y-websocket reads the global (`WebSocket.OPEN`) in its
// resync timer even when a polyfill is passed.
globalThis.WebSocket ??= WebSocket

/** The client libraries under test, by name. */
export const PROVIDERS = {
  v3: WebsocketProvider,
  v2: WebsocketProviderV2
}

/**
 * One Yjs client: a `Y.Doc`, its provider, and a record of what the provider reported.
 *
 * `statuses` lists every `status` event ('connecting' | 'connected' | 'disconnected') and
 * `closes` the close code of every `connection-close` event, so tests can assert on what
 * happened to the socket, not only on the final state.
 */
export class Client {
  constructor (serverUrl, room, { name, version = 'v3', params, gc = true } = {}) {
    const Provider = PROVIDERS[version]
    if (!Provider) throw new Error(`unknown provider version ${version}`)
    this.name = name
    this.room = room
    // `gc: false` keeps deleted content as items, as version-history setups do.
    this.doc = new Y.Doc({ gc })
    this.statuses = []
    this.destroyed = false
    this.closes = []
    this.provider = new Provider(serverUrl, room, this.doc, {
      // Exact spelling matters: the README's `WebsocketPolyfill` is silently ignored.
      WebSocketPolyfill: WebSocket,
      // Without this, providers in one process sync through BroadcastChannel and tests would
      // pass without the server relaying anything.
      disableBc: true,
      ...(params ? { params } : {})
    })
    this.provider.on('status', ({ status }) => this.statuses.push(status))
    this.provider.on('connection-close', event => this.closes.push(event?.code ?? null))
    if (name !== undefined) this.provider.awareness.setLocalStateField('user', { name })
  }

  get id () {
    return this.doc.clientID
  }

  get awareness () {
    return this.provider.awareness
  }

  text (key = 't') {
    return this.doc.getText(key)
  }

  /** The `user.name` this client currently sees for `other`, or undefined. */
  seenName (other) {
    return this.awareness.getStates().get(other.id)?.user?.name
  }

  /** Resolves once the provider has received sync step 2 from the server. */
  synced (options) {
    return waitFor(`${this.describe()} to sync`, () => this.provider.synced, {
      describe: () => `statuses ${JSON.stringify(this.statuses)}, closes ${JSON.stringify(this.closes)}`,
      ...options
    })
  }

  /** Waits until this client's text `key` equals `expected`. */
  hasText (expected, key = 't', options) {
    return waitFor(`${this.describe()} text "${key}" to equal ${JSON.stringify(expected)}`,
      () => this.text(key).toString() === expected,
      { describe: () => JSON.stringify(this.text(key).toString()), ...options })
  }

  /**
   * Drops the TCP connection without a close frame and without the awareness "null" a clean
   * `destroy()` sends, as a crashed tab or a lost network would. Reconnecting is switched off
   * first so the provider stays gone.
   */
  killSocket () {
    this.provider.shouldConnect = false
    const ws = this.provider.ws
    if (ws === null) throw new Error(`${this.describe()} has no socket to kill`)
    ws.terminate()
  }

  /** Stops the provider's timers and the doc's awareness interval, so the process can exit. */
  destroy () {
    if (this.destroyed) return
    this.destroyed = true
    this.provider.destroy()
    this.doc.destroy()
  }

  describe () {
    return `client ${this.name ?? this.id} (${this.room})`
  }
}

/** Opens a client and registers its teardown with `cleanup`. */
export function openClient (cleanup, serverUrl, room, options) {
  const client = new Client(serverUrl, room, options)
  cleanup.defer(() => client.destroy())
  return client
}

/** Opens clients and waits for all of them to sync. */
export async function openSynced (cleanup, serverUrl, room, names, options) {
  const clients = names.map(name => openClient(cleanup, serverUrl, room, { ...options, name }))
  await Promise.all(clients.map(c => c.synced()))
  return clients
}
