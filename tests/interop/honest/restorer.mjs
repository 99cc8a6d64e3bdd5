// Version history under honest traffic (issue #20): while a room's clients edit, versions are
// made and restored through the HTTP API of either node, at seeded random steps. A restore is a
// forward edit that the room merges with whatever the clients type meanwhile, so during the
// run only the suite's own checks apply (no honest client refused, one document everywhere);
// once the room is quiet, `quietRestore` restores one more version and then the content must be
// exactly that version's.

import * as Y from 'yjs'
import { renderContent, stateVectorHex } from './edits.mjs'
import { Rng, subSeed } from './rng.mjs'

/** The identity restores are attributed to (`X-Chorus-Author`). */
export const RESTORER_AUTHOR = 'honest-restorer'

/** One room's version actions, chained so that they reach the server in the order drawn. */
export class Restorer {
  constructor (room, apiKey) {
    this.room = room
    this.session = room.session
    this.apiKey = apiKey
    // Its own stream: turning the mode on does not change what the clients do for a seed.
    this.rng = new Rng(subSeed(this.session.seed, 'restorer', room.index))
    /** Version ids known on each node's store (the nodes do not share a store). */
    this.versions = this.session.nodes.map(() => [])
    this.chain = Promise.resolve()
  }

  /**
   * Called after each step of the room. Every draw is made on every call, so the plan (which
   * steps act, what and on which node) depends on the seed only, not on timing.
   */
  maybeAct (steps) {
    const go = this.rng.chance(this.session.opts.restores / steps)
    const plan = {
      kind: this.rng.chance(0.55) ? 'restore' : 'create',
      node: this.rng.int(this.session.nodes.length),
      which: this.rng.uint32()
    }
    if (!go) return
    // Not awaited: the clients keep editing while the request is in flight.
    this.chain = this.chain.then(() => this.act(plan))
  }

  /** Resolves once every action drawn so far is done. */
  idle () {
    return this.chain
  }

  async act ({ kind, node: pick, which }) {
    const nodes = this.session.nodes
    const node = nodes[pick].down ? nodes.find(n => !n.down) : nodes[pick]
    if (node === undefined) {
      this.session.count('version:skipped(node down)')
      return
    }
    const known = this.versions[node.index]
    const server = node.server
    // A request cut by the mid-session SIGTERM of its node is what a restart looks like.
    const restarted = () => node.down || node.server !== server
    // A restore needs a version on that node's store; until there is one, make one.
    const restore = kind === 'restore' && known.length > 0
    const what = restore
      ? { method: 'POST', path: `versions/${known[which % known.length]}/restore`, status: 200, label: 'version:restore' }
      : { method: 'POST', path: 'versions', status: 201, label: 'version:create', body: { label: `honest step ${this.session.progress}` } }
    let response
    try {
      response = await this.api(node, what.method, what.path, what.body)
    } catch (err) {
      if (restarted()) this.session.count(`${what.label}(interrupted by restart)`)
      else this.problem(`${what.method} ${what.path} on ${node.name} failed: ${err.message}`)
      return
    }
    if (response.status !== what.status) {
      if (restarted()) this.session.count(`${what.label}(interrupted by restart)`)
      else this.problem(`${what.method} ${what.path} on ${node.name}: HTTP ${response.status} ${response.text}`)
      return
    }
    // A restore records a version "restored from" the one it restored: restorable in turn.
    known.push(restore ? response.json.version.id : response.json.id)
    this.session.count(what.label)
  }

  /**
   * With no edit in flight (every client converged): restore one known version through a node
   * and wait until every client holds exactly its content. Returns false when there was none.
   */
  async quietRestore () {
    const nodes = this.session.nodes
    const node = nodes[this.rng.int(nodes.length)]
    const known = this.versions[node.index]
    if (known.length === 0) return false
    const id = known[this.rng.int(known.length)]
    const version = await fetch(this.url(node, `versions/${id}`), {
      headers: { authorization: `Bearer ${this.apiKey}`, accept: 'application/octet-stream' }
    })
    if (version.status !== 200) throw new Error(`${this.room.name}: GET version ${id} on ${node.name}: HTTP ${version.status}`)
    const doc = new Y.Doc()
    Y.applyUpdate(doc, new Uint8Array(await version.arrayBuffer()))
    // Content, not history: the restore may split text runs differently (see `renderContent`).
    const expected = renderContent(doc)
    doc.destroy()
    const response = await this.api(node, 'POST', `versions/${id}/restore`)
    if (response.status !== 200) throw new Error(`${this.room.name}: quiet restore of ${id} on ${node.name}: HTTP ${response.status} ${response.text}`)
    this.session.count('version:quiet-restore')
    const clients = this.room.clients
    await this.session.waitAll(`${this.room.name}: every client to hold exactly version ${id} after a restore with no concurrent edit`, () => {
      const sv = stateVectorHex(clients[0].doc)
      return clients.every(c => stateVectorHex(c.doc) === sv && renderContent(c.doc) === expected)
    }, this.session.opts.convergeTimeoutMs, () => clients.map(c => `${c.name}: ${renderContent(c.doc) === expected ? 'equal' : 'differs'}`).join(', ') +
      `; first client ${renderContent(clients[0].doc).slice(0, 600)} vs version ${expected.slice(0, 600)}`)
    return true
  }

  problem (message) {
    this.session.problems.push(`${this.room.name}: ${message}`)
    this.session.log(`honest-traffic seed ${this.session.seed}: ${this.room.name}: ${message}`)
  }

  url (node, path) {
    return `${node.server.httpUrl}/api/v1/docs/${encodeURIComponent(this.room.name)}/${path}`
  }

  async api (node, method, path, body) {
    const headers = { authorization: `Bearer ${this.apiKey}`, 'x-chorus-author': RESTORER_AUTHOR }
    if (body !== undefined) headers['content-type'] = 'application/json'
    const response = await fetch(this.url(node, path), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body)
    })
    const text = await response.text()
    let json = null
    try { json = text ? JSON.parse(text) : null } catch { json = null }
    return { status: response.status, text, json }
  }
}
