// Times an honest Yjs script that inserts in a loop without a transaction (Yjs then sends one
// update message per insert) against any y-websocket server, and measures how another room's
// latency fares meanwhile. See README.md.
//
//   node bench.mjs --url ws://127.0.0.1:1234/ws [--inserts 10240] [--bytes 1024] [--position start|end]
//                  [--no-probe] [--json]

import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

// y-websocket reads the global in its resync timer even when a polyfill is passed.
globalThis.WebSocket ??= WebSocket

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    inserts: { type: 'string', default: '10240' },
    bytes: { type: 'string', default: '1024' },
    // `end` appends, the way a person types; Yjs then merges the pieces into one item and copies
    // the whole merged string to encode each next update, so the client's loop is quadratic.
    position: { type: 'string', default: 'start' },
    'no-probe': { type: 'boolean', default: false },
    'probe-every-ms': { type: 'string', default: '20' },
    'timeout-s': { type: 'string', default: '300' },
    json: { type: 'boolean', default: false },
    'probe-child': { type: 'boolean', default: false }
  }
})

if (!args.url) {
  console.error('usage: node bench.mjs --url ws://HOST:PORT/ws [--inserts N] [--bytes N] [--no-probe] [--json]')
  process.exit(1)
}

/** One client as a browser tab would be: a doc and its provider, and the closes it saw. */
function open (room) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(args.url, room, doc, { WebSocketPolyfill: WebSocket, disableBc: true })
  const closes = []
  provider.on('connection-close', event => closes.push(event?.code ?? null))
  return { doc, provider, closes }
}

async function until (what, condition, timeoutMs) {
  const deadline = performance.now() + timeoutMs
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await delay(2)
  }
}

const stop = client => {
  client.provider.destroy()
  client.doc.destroy()
}

const percentile = (sorted, p) =>
  sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]

function summary (samples) {
  const sorted = [...samples].sort((a, b) => a - b)
  const round = x => (x === null ? null : Math.round(x * 10) / 10)
  return {
    count: sorted.length,
    p50_ms: round(percentile(sorted, 0.5)),
    p99_ms: round(percentile(sorted, 0.99)),
    max_ms: round(sorted.at(-1) ?? null)
  }
}

/**
 * The probe, in its own process so the writer's loop does not stall its timers: two clients in
 * another room, one setting a map key to its send time every few milliseconds, the other
 * recording how long each took to arrive.
 */
async function probeChild () {
  const room = `fast-writer-probe-${randomBytes(4).toString('hex')}`
  const sender = open(room)
  const receiver = open(room)
  await until('the probe clients to sync', () => sender.provider.synced && receiver.provider.synced, 30_000)
  let phase = 'before'
  const samples = { before: [], during: [] }
  receiver.doc.getMap('probe').observe(event => {
    const now = performance.now()
    for (const key of event.keysChanged) {
      const sent = event.target.get(key)
      samples[sent.phase]?.push(now - sent.at)
    }
  })
  const map = sender.doc.getMap('probe')
  let seq = 0
  const timer = setInterval(() => {
    map.set(String(seq++), { at: performance.now(), phase })
  }, Number(args['probe-every-ms']))
  process.on('message', async msg => {
    if (msg === 'during') phase = 'during'
    if (msg === 'stop') {
      clearInterval(timer)
      // What is still in flight arrives, or counts as lost.
      await delay(500)
      process.send({ before: summary(samples.before), during: summary(samples.during), sent: seq, closes: sender.closes.concat(receiver.closes) })
      stop(sender)
      stop(receiver)
      process.exit(0)
    }
  })
  process.send('ready')
}

async function main () {
  const inserts = Number(args.inserts)
  const bytes = Number(args.bytes)
  const timeoutMs = Number(args['timeout-s']) * 1000
  const room = `fast-writer-${randomBytes(4).toString('hex')}`

  let probe = null
  if (!args['no-probe']) {
    probe = fork(new URL(import.meta.url).pathname, [...process.argv.slice(2), '--probe-child'])
    await new Promise((resolve, reject) => {
      probe.once('message', resolve)
      probe.once('exit', code => reject(new Error(`probe exited with ${code}`)))
    })
    // A baseline before the flood.
    await delay(2000)
  }

  const writer = open(room)
  const reader = open(room)
  await until('the writer and the reader to sync', () => writer.provider.synced && reader.provider.synced, 30_000)
  const text = writer.doc.getText('t')
  const chunk = i => `<${i}>`.padEnd(bytes, String.fromCharCode(97 + (i % 26)))
  const expected = inserts * bytes

  probe?.send('during')
  const start = performance.now()
  const at = args.position === 'end' ? () => text.length : () => 0
  for (let i = 0; i < inserts; i++) text.insert(at(), chunk(i))
  const looped = performance.now()
  let drained = null
  await until('the reader to hold every insert', () => {
    if (drained === null && writer.provider.ws?.bufferedAmount === 0) drained = performance.now()
    return reader.doc.getText('t').length === expected
  }, timeoutMs)
  const complete = performance.now()
  const same = reader.doc.getText('t').toString() === text.toString()

  const probed = probe === null
    ? null
    : await new Promise(resolve => {
      probe.once('message', resolve)
      probe.send('stop')
    })

  const report = {
    url: args.url,
    inserts,
    bytes_per_insert: bytes,
    loop_ms: Math.round(looped - start),
    writer_socket_drained_ms: drained === null ? null : Math.round(drained - start),
    reader_complete_ms: Math.round(complete - start),
    reader_complete_after_loop_ms: Math.round(complete - looped),
    identical: same,
    writer_closes: [...writer.closes],
    reader_closes: [...reader.closes],
    probe: probed
  }
  stop(writer)
  stop(reader)
  if (args.json) {
    console.log(JSON.stringify(report))
  } else {
    console.log(`${args.url}: ${inserts} inserts of ${bytes} B; loop ${report.loop_ms} ms, ` +
      `writer's socket drained at ${report.writer_socket_drained_ms} ms, reader complete at ${report.reader_complete_ms} ms ` +
      `(${report.reader_complete_after_loop_ms} ms after the loop); ` +
      `identical ${same}; closes writer ${JSON.stringify(report.writer_closes)} reader ${JSON.stringify(report.reader_closes)}`)
    if (probed) {
      const line = s => `p50 ${s.p50_ms} ms, p99 ${s.p99_ms} ms, max ${s.max_ms} ms (${s.count} samples)`
      console.log(`  another room's latency: before ${line(probed.before)}; during ${line(probed.during)}; closes ${JSON.stringify(probed.closes)}`)
    }
  }
  process.exit(same && report.writer_closes.length === 0 ? 0 : 2)
}

if (args['probe-child']) {
  probeChild()
} else {
  main().catch(err => {
    console.error(err.message)
    process.exit(1)
  })
}
