// Edits that can be accounted for: every insert is a unique marker such as `[a-17]`, so after
// any amount of concurrency a test can say exactly which edits a document holds, which are
// missing and which arrived twice.

import * as Y from 'yjs'
import { waitFor } from './wait.mjs'

const MARKER = /\[[^[\]]*\]/g

/** Small deterministic PRNG (mulberry32) so a failing edit sequence can be replayed by seed. */
export function prng (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The markers in `text`, in order; null if the text holds anything but whole markers. */
export function markersIn (text) {
  const found = text.match(MARKER) ?? []
  return found.join('') === text ? found : null
}

/**
 * Inserts `marker` between two markers (or at either end), never inside one.
 *
 * Concurrent inserts from other clients then also land between markers, because a Yjs insert
 * is placed between its left and right neighbours; so every marker stays one contiguous,
 * searchable string however the edits interleave.
 */
export function insertMarker (ytext, marker, rand) {
  const text = ytext.toString()
  const boundaries = [0]
  for (let i = text.indexOf(']'); i !== -1; i = text.indexOf(']', i + 1)) boundaries.push(i + 1)
  ytext.insert(boundaries[Math.floor(rand() * boundaries.length)], marker)
}

/** Deletes `marker` from `ytext` if present; returns whether it was. */
export function deleteMarker (ytext, marker) {
  const at = ytext.toString().indexOf(marker)
  if (at === -1) return false
  ytext.delete(at, marker.length)
  return true
}

/**
 * Types a new marker into one client's text every `every` ms until stopped, like a user who
 * keeps typing whatever happens to the network. `typed` lists every marker in typing order;
 * tests slice it by phase (`typed.length` at a given moment).
 */
export class Typist {
  constructor (client, tag, { every = 40, seed = 1, key = 't' } = {}) {
    this.client = client
    this.tag = tag
    this.key = key
    this.every = every
    this.rand = prng(seed)
    this.typed = []
    this.timer = null
  }

  /** Types one marker now and returns it. */
  typeOne () {
    const marker = `[${this.tag}-${this.typed.length}]`
    insertMarker(this.client.text(this.key), marker, this.rand)
    this.typed.push(marker)
    return marker
  }

  start () {
    if (this.timer === null) this.timer = setInterval(() => this.typeOne(), this.every)
    return this
  }

  stop () {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  get last () {
    return this.typed.at(-1)
  }
}

/** Starts `Typist`s and registers their stop with `cleanup`, so no timer outlives a failed test. */
export function startTyping (cleanup, entries, options) {
  const typists = entries.map(([client, tag], i) => new Typist(client, tag, { seed: 1000 + i, ...options }).start())
  cleanup.defer(() => typists.forEach(t => t.stop()))
  return typists
}

/** Whether `client`'s text contains `marker` right now. */
export function has (client, marker, key = 't') {
  return client.text(key).toString().includes(marker)
}

/**
 * What is wrong with `client`'s text compared with the `expected` set of markers, or null when
 * it holds each of them exactly once and nothing else.
 */
export function markerProblems (client, expected, key = 't') {
  const text = client.text(key).toString()
  const found = markersIn(text)
  if (found === null) return `${client.describe()}: text is not made of whole markers: ${JSON.stringify(text.slice(0, 200))}`
  const counts = new Map()
  for (const m of found) counts.set(m, (counts.get(m) ?? 0) + 1)
  const missing = [...expected].filter(m => !counts.has(m))
  const extra = [...counts.keys()].filter(m => !expected.has(m))
  const doubled = [...counts].filter(([, n]) => n > 1).map(([m]) => m)
  if (missing.length + extra.length + doubled.length === 0) return null
  const list = xs => `${xs.length} ${JSON.stringify(xs.slice(0, 8))}${xs.length > 8 ? '…' : ''}`
  return `${client.describe()}: missing ${list(missing)}, unexpected ${list(extra)}, doubled ${list(doubled)}`
}

/**
 * Waits until every client's text holds exactly the `expected` markers and all clients have
 * the same text and the same state vector (so nothing else, such as a deleted item, differs).
 * On timeout the error lists, per client, what is missing, unexpected or doubled.
 */
export function converged (clients, expected, { key = 't', ...options } = {}) {
  const sv = c => Buffer.from(Y.encodeStateVector(c.doc)).toString('base64')
  return waitFor(`${clients.length} clients to converge on ${expected.size} markers`, () => {
    if (clients.some(c => markerProblems(c, expected, key) !== null)) return false
    const text = clients[0].text(key).toString()
    return clients.every(c => c.text(key).toString() === text && sv(c) === sv(clients[0]))
  }, {
    describe: () => clients.map(c => markerProblems(c, expected, key) ??
      `${c.describe()}: all ${expected.size} markers, state vector ${sv(c)}`).join('; '),
    ...options
  })
}
