// One seeded session of honest traffic: real `chorus serve` processes (one, or two sharing a
// private Redis), several rooms with several real y-websocket clients each, doing at random what
// editors do, then a check that (a) no honest client was refused, (b) every client and a late
// joiner hold the same document, and (c) the server's own export is that document.

import { setTimeout as delay } from 'node:timers/promises'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { relayArgs, relayPrefix, redisState } from '../lib/cluster.mjs'
import { startRedis } from '../lib/redis.mjs'
import { makeDataDir, removeDataDir, startServer } from '../lib/server.mjs'
import { waitFor } from '../lib/wait.mjs'
import {
  mapEdits, paste, pickTarget, render, stateVectorHex, textEdits, textInside, typeById, typeInto, xmlEdits, ROOTS
} from './edits.mjs'
import { Recorder } from './record.mjs'
import { Restorer } from './restorer.mjs'
import { Rng, subSeed } from './rng.mjs'

// Node 20 has no global WebSocket, and y-websocket reads the global in its resync timer.
globalThis.WebSocket ??= WebSocket
// Every provider adds a process 'exit' listener; a session has dozens.
process.setMaxListeners(0)

export const API_KEY = 'honest-traffic-api-key'

/** Close codes an honest client may see: normal, going away (restart), none given, abnormal. */
const ACCEPTABLE_CLOSES = new Set([1000, 1001, 1005, 1006])

export const DEFAULTS = {
  nodes: 1,
  rooms: 2,
  clients: 5,
  steps: 160,
  /** Pause between two actions of a room, chosen in [0, maxPauseMs]. */
  maxPauseMs: 30,
  /** Restart a node (SIGTERM, start again) once, when 40% of the steps are done. */
  restart: true,
  /** Size range of a large paste, KiB. */
  pasteKiB: [10, 40],
  /** Share of clients with `new Y.Doc({ gc: false })`. */
  gcOffShare: 0.3,
  convergeTimeoutMs: 60_000,
  /**
   * Version history under load (issue #20): expected number of version actions per room (each
   * one a version made or restored through the HTTP API of a node, at a seeded random step,
   * while the clients keep editing); 0 turns it off. Off by default, so the seeds of the plain
   * suite replay as before.
   */
  restores: 0,
  record: null,
  log: msg => process.stderr.write(msg + '\n')
}

/** Whether a close event means the server refused an honest client. */
export function isRefusal (close) {
  if (close === null) return false
  if (close.local && (close.code === 1000 || close.code === 1005 || close.code === 1006)) return false
  return !ACCEPTABLE_CLOSES.has(close.code)
}

class Node {
  constructor (session, index) {
    this.session = session
    this.index = index
    this.name = `node${index}`
    this.server = null
    this.down = false
    this.dataDir = makeDataDir()
  }

  async start (listen) {
    const { session } = this
    const args = ['--api-key', API_KEY]
    if (session.redis) args.push(...relayArgs(session.redis, session.prefix))
    this.server = await startServer({ dataDir: this.dataDir, listen, args, name: this.name })
    this.down = false
    return this.server
  }

  get url () {
    return this.server.url
  }
}

class Client {
  constructor (room, index, node, rng) {
    this.room = room
    this.session = room.session
    this.index = index
    this.name = `${room.name}#c${index}`
    this.rng = rng
    this.gc = !rng.chance(this.session.opts.gcOffShare)
    this.doc = new Y.Doc({ gc: this.gc })
    this.doc.clientID = this.session.freshClientId(rng)
    this.node = node
    this.offline = false
    this.why = 'join'
    this.recent = []
    this.undo = new Y.UndoManager([
      this.doc.getText(ROOTS.text), this.doc.getXmlFragment(ROOTS.xml),
      this.doc.getMap(ROOTS.map), this.doc.getArray(ROOTS.array)
    ], { captureTimeout: rng.pick([0, 300, 500]) })
    this.WS = this.session.recorder.connectionClass(room.name, () => {
      const why = this.why
      // Later sockets of the same provider are its own redials (after a close or a restart).
      this.why = 'redial'
      return { client: this.name, node: this.node.index, gc: this.gc, why }
    })
    this.awareness = null
    this.provider = this.makeProvider()
    this.awareness.setLocalStateField('user', { name: this.name, color: `#${(rng.uint32() & 0xffffff).toString(16).padStart(6, '0')}` })
  }

  makeProvider () {
    const provider = new WebsocketProvider(this.node.url, this.room.name, this.doc, {
      WebSocketPolyfill: this.WS,
      disableBc: true,
      ...(this.awareness ? { awareness: this.awareness } : {})
    })
    this.awareness = provider.awareness
    return provider
  }

  note (what) {
    this.recent.push(what)
    if (this.recent.length > 6) this.recent.shift()
    this.session.count(what)
  }

  /** A cursor in awareness after an edit, as editors publish (a relative position). */
  moveCursor () {
    const t = this.doc.getText(ROOTS.text)
    const at = this.rng.int(t.length + 1)
    const pos = Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(t, at))
    this.awareness.setLocalStateField('cursor', { anchor: pos, head: pos })
  }

  /** Typing into one of the texts, used when the connection (re)opens; own rng (asynchronous). */
  typeSomething (label) {
    const rng = this.rng
    const texts = [this.doc.getText(ROOTS.text)]
    const frag = this.doc.getXmlFragment(ROOTS.xml)
    const t = textInside(frag)
    if (t !== null) texts.push(t)
    typeInto(rng, rng.pick(texts))
    this.note(label)
  }

  goOffline () {
    this.provider.disconnect()
    this.offline = true
    this.note('offline')
  }

  /**
   * `provider.connect()` and typing at once: in the 'connected' status handler (before sync
   * step 1 is even sent), right after `connect()` (before the socket opens), or both.
   */
  comeBack (rng, { typing = true } = {}) {
    const mode = typing ? rng.pick(['on-connected', 'after-connect', 'both']) : 'none'
    this.why = `reconnect(${mode})`
    if (mode === 'on-connected' || mode === 'both') this.typeWhenConnected('type-on-connected')
    this.offline = false
    this.provider.connect()
    if (mode === 'after-connect' || mode === 'both') this.typeSomething('type-after-connect')
    this.note(`reconnect:${mode}`)
  }

  typeWhenConnected (label) {
    const provider = this.provider
    const handler = ({ status }) => {
      if (status !== 'connected') return
      provider.off('status', handler)
      if (this.provider === provider) this.typeSomething(label)
    }
    provider.on('status', handler)
  }

  /** To the other node: a new provider for the same doc, or the same provider with a new URL. */
  moveTo (node, rng) {
    const fresh = rng.chance(0.5)
    this.node = node
    this.why = fresh ? 'move(new-provider)' : 'move(switch-url)'
    if (fresh) {
      this.provider.destroy()
      this.provider = this.makeProvider()
      if (this.offline) this.provider.disconnect()
    } else {
      this.provider.serverUrl = node.url
      if (!this.offline) {
        this.provider.disconnect()
        this.provider.connect()
      }
    }
    if (!this.offline) {
      if (rng.chance(0.5)) this.typeWhenConnected('type-on-connected')
      else this.typeSomething('type-after-move')
    }
    this.note(fresh ? 'move:new-provider' : 'move:switch-url')
  }

  destroy () {
    this.provider.destroy()
    this.awareness.destroy()
    this.undo.destroy()
    this.doc.destroy()
  }
}

class Room {
  constructor (session, index) {
    this.session = session
    this.index = index
    this.name = `honest-s${session.seed}-n${session.opts.nodes}-r${index}`
    this.rng = new Rng(subSeed(session.seed, 'room', index))
    this.clients = []
    this.restorer = session.opts.restores > 0 ? new Restorer(this, API_KEY) : null
    const n = session.opts.clients
    for (let i = 0; i < n; i++) {
      const node = session.nodes[(index + i) % session.nodes.length]
      this.clients.push(new Client(this, i, node, new Rng(subSeed(session.seed, 'client', index, i))))
    }
  }

  /** One step: one client does one thing. */
  step () {
    const { rng, session } = this
    const client = rng.pick(this.clients)
    const doc = client.doc
    const canMove = session.nodes.length > 1 && session.nodes.some(n => n !== client.node && !n.down)
    const kind = rng.weighted([
      [26, 'text'], [26, 'xml'], [14, 'map'], [6, 'undo'], [4, 'conflict'], [4, 'offline'],
      [canMove ? 3 : 0, 'move'], [2, 'cursor'], [0.7, 'paste']
    ])
    let did = null
    switch (kind) {
      case 'text': did = rng.weighted([[40, 'type'], [8, 'typeFormatted'], [8, 'format'], [4, 'embed'], [14, 'delete'], [1, 'cut']].map(([w, k]) => [w, textEdits[k]]))(rng, doc); break
      case 'xml': did = rng.weighted([
        [5, 'addParagraph'], [2, 'addList'], [3, 'addListItem'], [30, 'type'], [5, 'format'], [8, 'deleteText'],
        [3, 'split'], [2, 'join'], [3, 'deleteBlock'], [2, 'deleteListItem'], [1, 'setAttribute']
      ].map(([w, k]) => [w, xmlEdits[k]]))(rng, doc); break
      case 'map': did = rng.weighted([
        [4, 'addCard'], [2, 'deleteCard'], [2, 'setDone'], [3, 'addNote'], [2, 'deleteNote'], [12, 'type'], [3, 'deleteText'],
        [3, 'addItem'], [2, 'deleteItem'], [2, 'moveItem']
      ].map(([w, k]) => [w, mapEdits[k]]))(rng, doc); break
      case 'undo':
        if (rng.chance(0.6)) { if (client.undo.undoStack.length > 0) { client.undo.undo(); did = 'undo' } } else if (client.undo.redoStack.length > 0) { client.undo.redo(); did = 'redo' }
        if (rng.chance(0.3)) client.undo.stopCapturing()
        break
      case 'conflict': did = this.conflict(client); break
      case 'offline':
        if (client.offline) client.comeBack(rng)
        else client.goOffline()
        return
      case 'move': {
        const others = session.nodes.filter(n => n !== client.node && !n.down)
        client.moveTo(rng.pick(others), rng)
        return
      }
      case 'cursor': break
      case 'paste': did = paste(rng, doc, rng.between(...session.opts.pasteKiB)); break
    }
    if (did) client.note(did)
    client.moveCursor()
  }

  /**
   * One client deletes a block, list item or card while every other client that has it types
   * inside it, all in the same tick, so the deletes and the typing cross on the wire.
   */
  conflict (deleter) {
    const target = pickTarget(this.rng, deleter.doc)
    if (target === null) return null
    for (const other of this.clients) {
      if (other === deleter) continue
      const type = typeById(other.doc, target.id)
      const text = type === null ? null : textInside(type)
      if (text !== null) {
        typeInto(this.rng, text)
        other.note(`type-into-deleted:${target.kind}`)
      }
    }
    target.remove()
    return `delete-while-typing:${target.kind}`
  }

  async run (steps) {
    for (let s = 0; s < steps; s++) {
      this.step()
      this.restorer?.maybeAct(steps)
      this.session.progress++
      await delay(this.rng.int(this.session.opts.maxPauseMs + 1))
    }
  }
}

export class Session {
  constructor (seed, opts) {
    this.seed = seed
    this.opts = { ...DEFAULTS, ...opts }
    this.rng = new Rng(subSeed(seed, 'session'))
    this.log = this.opts.log
    this.progress = 0
    this.stats = new Map()
    this.problems = []
    this.events = []
    this.clientIds = new Set()
    this.refusalLogs = new Map()
    this.redis = null
    this.prefix = relayPrefix()
    this.nodes = []
    this.rooms = []
    this.joiners = []
    this.recorder = new Recorder({
      keepFrames: this.opts.record !== null,
      onClose: (conn, room) => this.closed(conn, room),
      onError: (conn, room, err) => this.errored(conn, room, err)
    })
  }

  freshClientId (rng) {
    for (;;) {
      const id = rng.uint32() & 0x7fffffff
      if (id !== 0 && !this.clientIds.has(id)) {
        this.clientIds.add(id)
        return id
      }
    }
  }

  count (what) {
    this.stats.set(what, (this.stats.get(what) ?? 0) + 1)
  }

  clientNamed (name) {
    for (const room of this.rooms) for (const c of room.clients) if (c.name === name) return c
    return null
  }

  closed (conn, room) {
    const close = conn.close
    const event = { room, client: conn.client, conn: conn.index, node: conn.node, why: conn.why, ...close }
    if (isRefusal(close)) {
      const client = this.clientNamed(conn.client)
      event.recent = client ? [...client.recent] : []
      event.lastFrames = [...conn.lastKinds]
      this.events.push({ type: 'refusal', ...event })
      // The same client is often refused again at each redial; say so twice, then count.
      const key = `${conn.client} ${close.code} ${close.reason}`
      const seen = (this.refusalLogs.get(key) ?? 0) + 1
      this.refusalLogs.set(key, seen)
      if (seen > 2) return
      this.log(`honest-traffic seed ${this.seed}: REFUSED ${conn.client} (conn ${conn.index}, node ${conn.node}, ${conn.why}): ` +
        `close ${close.code} ${JSON.stringify(close.reason)} after ${close.frames_sent} frames (last sent: ${event.lastFrames.join(', ')}); recent actions ${JSON.stringify(event.recent)}` +
        (seen === 2 ? ' (further refusals of this client for this reason are only counted)' : ''))
    } else {
      this.events.push({ type: 'close', ...event })
    }
  }

  errored (conn, room, err) {
    // A refused upgrade (`Unexpected server response: 503`) is a refusal unless that node was
    // being restarted; connection refused while a node is down is what a restart looks like.
    const m = /Unexpected server response: (\d+)/.exec(err.message)
    if (m !== null && !this.nodes[conn.node]?.down) {
      this.events.push({ type: 'refusal', room, client: conn.client, conn: conn.index, node: conn.node, why: conn.why, code: `http ${m[1]}`, reason: err.message })
      this.log(`honest-traffic seed ${this.seed}: REFUSED ${conn.client} upgrade on node ${conn.node}: ${err.message}`)
    }
  }

  describeSetup () {
    const o = this.opts
    return `seed ${this.seed}: nodes ${o.nodes}, rooms ${o.rooms}, clients ${o.clients}, steps ${o.steps}, restart ${o.restart}` +
      (o.restores > 0 ? `, restores ${o.restores}` : '')
  }

  async start () {
    if (this.opts.nodes > 1) {
      this.redis = await startRedis()
    }
    for (let i = 0; i < this.opts.nodes; i++) this.nodes.push(new Node(this, i))
    await Promise.all(this.nodes.map(n => n.start()))
    if (this.redis) await redisState(this.nodes.map(n => n.server), 'connected')
    for (let i = 0; i < this.opts.rooms; i++) this.rooms.push(new Room(this, i))
    await this.waitAll('every client to sync at the start', () => this.allClients().every(c => c.provider.synced), 30_000)
  }

  allClients () {
    return this.rooms.flatMap(r => r.clients)
  }

  waitAll (what, condition, timeout, describe) {
    return waitFor(`${what} (honest-traffic ${this.describeSetup()})`, condition, { timeout, describe })
  }

  /** SIGTERM a node mid-session, then start it again on its data dir (same port, or a new one). */
  async restartNode () {
    const total = this.opts.steps * this.rooms.length
    await waitFor('40% of the steps', () => this.progress >= total * 0.4 || this.progress >= total, { timeout: 600_000 })
    if (this.progress >= total) return
    const node = this.rng.pick(this.nodes)
    const samePort = this.rng.chance(0.7)
    node.down = true
    this.count(`restart:${samePort ? 'same-port' : 'new-port'}`)
    this.log(`honest-traffic seed ${this.seed}: restarting ${node.name} (${samePort ? 'same port' : 'new port'})`)
    const exit = await node.server.stop()
    if (exit.code !== 0) this.problems.push(`${node.name} exited with ${JSON.stringify(exit)} after SIGTERM`)
    await delay(this.rng.between(50, 600))
    const addr = node.server.addr
    await node.start(samePort ? addr : '127.0.0.1:0')
    if (!samePort) {
      for (const c of this.allClients()) if (c.node === node) c.provider.serverUrl = node.url
    }
    if (this.redis) await redisState([node.server], 'connected')
  }

  async drive () {
    const work = this.rooms.map(r => r.run(this.opts.steps))
    if (this.opts.restart) work.push(this.restartNode())
    await Promise.all(work)
    // Version requests still in flight belong to the edits: converge only after them.
    await Promise.all(this.rooms.map(r => r.restorer?.idle()))
  }

  /** Everyone back online, then every replica of each room equal. */
  async converge () {
    for (const room of this.rooms) {
      for (const c of room.clients) if (c.offline) c.comeBack(room.rng, { typing: false })
    }
    const timeout = this.opts.convergeTimeoutMs
    await Promise.all(this.rooms.map(async room => {
      const differs = () => {
        const first = room.clients[0]
        const sv = stateVectorHex(first.doc)
        const content = render(first.doc)
        return room.clients.filter(c => !c.provider.synced || stateVectorHex(c.doc) !== sv || render(c.doc) !== content)
      }
      await this.waitAll(`${room.name}: every client to be synced with the same state`, () => differs().length === 0, timeout,
        () => room.clients.map(c => `${c.name}: synced ${c.provider.synced}, node ${c.node.index}, sv ${stateVectorHex(c.doc)}, ` +
          `${render(c.doc).length} chars${whereItDiffers(render(room.clients[0].doc), render(c.doc))}, ` +
          `delete set ${deleteSetHex(c.doc)}, recent ${JSON.stringify(c.recent)}`).join('; '))
    }))
  }

  /**
   * With `restores` on: once every room has converged, restore one known version per room with
   * no edit in flight; every client must then hold exactly that version's content.
   */
  async quietRestores () {
    for (const room of this.rooms) await room.restorer?.quietRestore()
  }

  /** A fresh client on every node joins each room and must hold exactly what the clients hold. */
  async lateJoiners () {
    for (const room of this.rooms) {
      const expectSv = stateVectorHex(room.clients[0].doc)
      const expect = render(room.clients[0].doc)
      for (const node of this.nodes) {
        const doc = new Y.Doc()
        const provider = new WebsocketProvider(node.url, room.name, doc, { WebSocketPolyfill: WebSocket, disableBc: true })
        this.joiners.push({ doc, provider })
        await this.waitAll(`a late joiner on ${node.name} to get ${room.name}`, () =>
          provider.synced && stateVectorHex(doc) === expectSv && render(doc) === expect, this.opts.convergeTimeoutMs,
        () => `synced ${provider.synced}, sv ${stateVectorHex(doc)} (expected ${expectSv}), content ${render(doc) === expect ? 'equal' : 'differs'}`)
        room.final = doc
      }
    }
  }

  /** `GET /api/v1/docs/<doc>/update` of every node, applied to a fresh doc, equals the clients' state. */
  async serverExport () {
    for (const room of this.rooms) {
      const expectSv = stateVectorHex(room.clients[0].doc)
      const expect = render(room.clients[0].doc)
      for (const node of this.nodes) {
        let last = 'no answer yet'
        await this.waitAll(`${node.name}'s export of ${room.name} to equal the clients' state`, async () => {
          let res
          try {
            res = await fetch(`${node.server.httpUrl}/api/v1/docs/${encodeURIComponent(room.name)}/update`, {
              headers: { Authorization: `Bearer ${API_KEY}` }
            })
          } catch (err) {
            last = `GET failed: ${err.message}`
            return false
          }
          if (res.status !== 200) {
            last = `HTTP ${res.status}: ${await res.text()}`
            return false
          }
          const doc = new Y.Doc()
          Y.applyUpdate(doc, new Uint8Array(await res.arrayBuffer()))
          const sv = stateVectorHex(doc)
          const same = sv === expectSv && render(doc) === expect
          last = `sv ${sv} (expected ${expectSv}), content ${render(doc) === expect ? 'equal' : 'differs'}`
          doc.destroy()
          return same
        }, 30_000, () => last)
      }
    }
  }

  refusals () {
    return this.events.filter(e => e.type === 'refusal')
  }

  async stop () {
    for (const j of this.joiners) {
      j.provider.destroy()
      j.doc.destroy()
    }
    for (const c of this.allClients()) c.destroy()
    await Promise.all(this.nodes.map(n => n.server?.kill()))
    if (this.redis) await this.redis.kill()
    for (const n of this.nodes) removeDataDir(n.dataDir)
  }

  writeCorpus () {
    const dir = this.opts.record
    for (const room of this.rooms) {
      // What the server should hold once it accepted every recorded frame: the union of every
      // client's document (each client sent everything it created in some frame: as an update
      // while connected, or in its sync step 2 answer when it reconnected).
      const union = new Y.Doc()
      for (const c of room.clients) Y.applyUpdate(union, Y.encodeStateAsUpdate(c.doc))
      const final = {
        converged: room.final !== undefined && stateVectorHex(room.final) === stateVectorHex(union) && render(room.final) === render(union),
        update: Y.encodeStateAsUpdate(union),
        stateVector: Y.encodeStateVector(union)
      }
      this.recorder.writeRoom(dir, `seed-${this.seed}-nodes-${this.opts.nodes}/room-${room.index}`, room.name, {
        seed: this.seed,
        nodes: this.opts.nodes,
        settings: Object.fromEntries(['rooms', 'clients', 'steps', 'maxPauseMs', 'pasteKiB', 'gcOffShare', 'restart', 'restores'].map(k => [k, this.opts[k]])),
        final,
        render: render(union),
        ok: this.problems.length === 0 && this.refusals().length === 0,
        problems: [...this.problems, ...this.refusals().map(r => `refused: ${r.client} connection ${r.conn} closed with ${r.code} ${JSON.stringify(r.reason)}`)]
      })
    }
  }
}

function closeSummary (closes) {
  const out = {}
  for (const c of closes) {
    const key = `${c.code}${c.local ? ' (local)' : ''}`
    out[key] = (out[key] ?? 0) + 1
  }
  return out
}

/**
 * Runs one seed and returns `{ seed, ok, problems, refusals, closes, stats }`; never throws for
 * a failed check (those are in `problems`), only for a broken setup.
 */
export async function runSession (seed, opts = {}) {
  const session = new Session(seed, opts)
  session.log(`honest-traffic: start ${session.describeSetup()}`)
  const started = Date.now()
  try {
    await session.start()
    await session.drive()
    try {
      await session.converge()
      await session.quietRestores()
      await session.lateJoiners()
      await session.serverExport()
    } catch (err) {
      session.problems.push(err.message)
    }
  } catch (err) {
    session.problems.push(`setup or drive failed: ${err.stack ?? err.message}`)
  } finally {
    if (session.opts.record !== null) {
      try {
        session.writeCorpus()
      } catch (err) {
        session.problems.push(`recording failed: ${err.message}`)
      }
    }
    await session.stop()
  }
  const refusals = session.refusals()
  const grouped = new Map()
  for (const r of refusals) {
    const key = `${r.client} ${r.code} ${r.reason}`
    const g = grouped.get(key)
    if (g) g.count++
    else grouped.set(key, { first: r, count: 1 })
  }
  for (const { first: r, count } of grouped.values()) {
    session.problems.push(`refused ${count}x: ${r.client} (node ${r.node}; first on a ${r.why} connection) got close ${r.code} ` +
      `${JSON.stringify(r.reason)}; last frames sent ${JSON.stringify(r.lastFrames ?? [])}; recent actions ${JSON.stringify(r.recent ?? [])}`)
  }
  const result = {
    seed,
    nodes: session.opts.nodes,
    ok: session.problems.length === 0,
    problems: session.problems,
    refusals,
    closes: session.events.filter(e => e.type === 'close'),
    stats: Object.fromEntries([...session.stats].sort()),
    ms: Date.now() - started
  }
  session.log(`honest-traffic: ${result.ok ? 'ok' : 'FAILED'} ${session.describeSetup()} in ${result.ms} ms` +
    (result.ok ? '' : `\n  ${result.problems.join('\n  ')}`))
  if (session.opts.verbose) session.log(`honest-traffic: seed ${seed} did ${JSON.stringify(result.stats)}; closes ${JSON.stringify(closeSummary(result.closes))}`)
  return result
}

/** Where `other` first differs from `first`, with a little of each around it; '' if equal. */
function whereItDiffers (first, other) {
  if (first === other) return ''
  let at = 0
  while (at < first.length && first[at] === other[at]) at++
  const around = text => JSON.stringify(text.slice(Math.max(0, at - 40), at + 80))
  return ` (differs from client 0 at ${at}: ${around(other)} vs ${around(first)})`
}

/** A short digest of a document's delete set, to tell a missing delete from a reordering. */
function deleteSetHex (doc) {
  const ds = Y.encodeStateAsUpdate(doc, Y.encodeStateVector(doc))
  return Buffer.from(ds).toString('hex').slice(0, 64) + `…(${ds.length} bytes)`
}
