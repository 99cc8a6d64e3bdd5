// Every WebSocket a generated client opens goes through `connectionClass`: a subclass of `ws`'s
// WebSocket (passed to WebsocketProvider as `WebSocketPolyfill`) that notes each binary frame
// the client hands to an open socket, in order, and how the socket ended (close code and reason
// from the server's close frame, 1006 without one, whether we closed it ourselves) and any error.
//
// With recording on, `writeRoom` writes one file per connection plus a manifest per room; the
// format is described in crates/chorus-server/tests/corpus/honest/README.md.

import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import WebSocket from 'ws'

export const CORPUS_FORMAT = 'chorus-honest-corpus/1'

/** What a y-websocket frame is, from its first bytes (message type, sync message type). */
export function frameKind (bytes) {
  const kinds = { 1: 'awareness', 2: 'auth', 3: 'query-awareness' }
  if (bytes[0] === 0) return ['sync-step-1', 'sync-step-2', 'sync-update'][bytes[1]] ?? `sync-${bytes[1]}`
  return kinds[bytes[0]] ?? `type-${bytes[0]}`
}

/** Everything one session's connections did, by room. */
export class Recorder {
  constructor ({ keepFrames = false, onClose, onError } = {}) {
    this.keepFrames = keepFrames
    this.onClose = onClose ?? (() => {})
    this.onError = onError ?? (() => {})
    this.t0 = Date.now()
    /** room name -> { connections: [...], order: [connection index per frame] } */
    this.rooms = new Map()
  }

  room (name) {
    let room = this.rooms.get(name)
    if (room === undefined) {
      room = { connections: [], order: [], orderMs: [] }
      this.rooms.set(name, room)
    }
    return room
  }

  /**
   * A WebSocket class for one client. `meta()` is asked at each connection for the labels to
   * keep with it (client name, node, what the client was doing).
   */
  connectionClass (roomName, meta) {
    const recorder = this
    return class RecordedWebSocket extends WebSocket {
      constructor (url, protocols) {
        super(url, protocols)
        const room = recorder.room(roomName)
        const conn = {
          index: room.connections.length,
          url: String(url),
          openedMs: Date.now() - recorder.t0,
          ...meta(),
          frames: [],
          frameCount: 0,
          bytes: 0,
          lastKinds: [],
          localClose: false,
          close: null,
          errors: []
        }
        room.connections.push(conn)
        this.conn = conn
        this.on('close', (code, reason) => {
          conn.close = { code, reason: reason.toString('utf8'), local: conn.localClose, at_ms: Date.now() - recorder.t0, frames_sent: conn.frameCount }
          recorder.onClose(conn, roomName)
        })
        this.on('error', err => {
          conn.errors.push(err.message)
          recorder.onError(conn, roomName, err)
        })
      }

      send (data, options, cb) {
        if (this.readyState === WebSocket.OPEN && typeof data !== 'string') {
          const bytes = Buffer.from(ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data))
          const room = recorder.room(roomName)
          if (recorder.keepFrames) {
            this.conn.frames.push(Buffer.from(bytes)) // a copy: the caller may reuse its buffer
            room.order.push(this.conn.index)
            room.orderMs.push(Date.now() - recorder.t0)
          }
          this.conn.lastKinds.push(frameKind(bytes))
          if (this.conn.lastKinds.length > 3) this.conn.lastKinds.shift()
          this.conn.frameCount++
          this.conn.bytes += bytes.length
        }
        return super.send(data, options, cb)
      }

      close (code, reason) {
        this.conn.localClose = true
        return super.close(code, reason)
      }

      terminate () {
        this.conn.localClose = true
        return super.terminate()
      }
    }
  }

  /** Frames of one connection as repeated `u32 little-endian length | bytes`. */
  static encodeFrames (frames) {
    const parts = []
    for (const frame of frames) {
      const len = Buffer.alloc(4)
      len.writeUInt32LE(frame.length, 0)
      parts.push(len, frame)
    }
    return Buffer.concat(parts)
  }

  /**
   * Writes `<dir>/<roomDir>/conn-NNN.bin` for every connection of `roomName` and
   * `<dir>/<roomDir>/manifest.json`. `final` is `{ update, stateVector, converged }` (the
   * Uint8Arrays of the union of every client's document at the end).
   */
  writeRoom (dir, roomDir, roomName, { seed, nodes, settings, final, render, ok, problems }) {
    const room = this.room(roomName)
    const out = join(dir, roomDir)
    mkdirSync(out, { recursive: true })
    const connections = room.connections.map(conn => {
      const file = `conn-${String(conn.index).padStart(3, '0')}.bin`
      writeFileSync(join(out, file), Recorder.encodeFrames(conn.frames))
      return {
        file,
        client: conn.client,
        node: conn.node,
        gc: conn.gc,
        reason: conn.why,
        opened_ms: conn.openedMs,
        frames: conn.frames.length,
        bytes: conn.bytes,
        close: conn.close
      }
    })
    const manifest = {
      format: CORPUS_FORMAT,
      seed,
      nodes,
      settings,
      doc: roomName,
      ok,
      problems,
      connections,
      order: room.order,
      order_ms: room.orderMs,
      final: {
        converged: final.converged,
        update_v1_hex: Buffer.from(final.update).toString('hex'),
        state_vector_hex: Buffer.from(final.stateVector).toString('hex'),
        content: JSON.parse(render)
      }
    }
    // `order` and `order_ms` on one line each: they have an entry per frame.
    const text = JSON.stringify({ ...manifest, order: '@ORDER@', order_ms: '@ORDER_MS@' }, null, 1)
      .replace('"@ORDER@"', JSON.stringify(room.order))
      .replace('"@ORDER_MS@"', JSON.stringify(room.orderMs))
    writeFileSync(join(out, 'manifest.json'), text + '\n')
  }
}
