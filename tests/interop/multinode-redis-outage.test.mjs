// Multi-node case 2: Redis dies mid-edit while clients on nodes A and B keep typing. Each node
// keeps serving its own clients; when Redis is back on the same port, every document on every
// client holds every edit made before, during and after the outage.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { openSynced } from './lib/client.mjs'
import { redisState, relayPrefix, startNode } from './lib/cluster.mjs'
import { converged, has, startTyping } from './lib/markers.mjs'
import { startRedis } from './lib/redis.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

// Two rooms, so the test also sees that a reconnect resynchronises every loaded room, not one.
const ROOMS = ['multinode-outage-1', 'multinode-outage-2']

/** Markers each writer types and sees crossed before Redis is killed. */
const BEFORE_MARKERS = 12

/**
 * Markers each writer must type into its node while Redis is down: at 40 ms a marker about
 * 2.4 s, longer than one relay resync interval and than the relay's longest redial backoff, so
 * the outage spans a failed periodic resync and several failed redials.
 */
const OUTAGE_MARKERS = 60

/** Markers each writer types after Redis is back, before typing stops. */
const RECOVERY_MARKERS = 12

/** The relay redials Redis with backoff (at most 2 s) and repairs with state vectors. */
const RECOVERY_TIMEOUT_MS = 30_000

test('a Redis outage mid-edit loses nothing', { timeout: 120_000 }, async t => {
  const cleanup = new Cleanup(t)
  const redis = await startRedis({ cleanup })
  const prefix = relayPrefix()
  const [A, B] = await Promise.all(['A', 'B'].map(name => startNode(cleanup, redis, prefix, { name })))
  await redisState([A, B], 'connected')

  // Per room: a writer and a witness on each node. The witness shows what its node serves.
  const rooms = []
  for (const [i, room] of ROOMS.entries()) {
    const [writerA, witnessA] = await openSynced(cleanup, A.url, room, [`writerA${i}`, `witnessA${i}`])
    const [writerB, witnessB] = await openSynced(cleanup, B.url, room, [`writerB${i}`, `witnessB${i}`])
    const [typistA, typistB] = startTyping(cleanup, [[writerA, `a${i}`], [writerB, `b${i}`]], { every: 40 })
    rooms.push({ room, writerA, witnessA, writerB, witnessB, typistA, typistB })
  }
  const typists = rooms.flatMap(r => [r.typistA, r.typistB])

  // Before the outage the relay works: each node's witness sees the other node's edits.
  for (const r of rooms) {
    await waitFor(`${r.room}: witnesses to see ${BEFORE_MARKERS} edits from the other node`, () =>
      r.typistA.typed.length >= BEFORE_MARKERS && has(r.witnessB, r.typistA.typed[BEFORE_MARKERS - 1]) &&
      r.typistB.typed.length >= BEFORE_MARKERS && has(r.witnessA, r.typistB.typed[BEFORE_MARKERS - 1]))
  }

  await redis.kill()
  const outageStart = Date.now()
  // Everything typed from here on was typed while no Redis process existed.
  const cut = new Map(typists.map(t => [t, t.typed.length]))
  await redisState([A, B], 'disconnected')

  await t.test('each node keeps serving its own clients while Redis is down', async () => {
    for (const r of rooms) {
      for (const [typist, witness] of [[r.typistA, r.witnessA], [r.typistB, r.witnessB]]) {
        await waitFor(`${witness.describe()} to see ${OUTAGE_MARKERS} markers typed on its node during the outage`,
          () => typist.typed.length - cut.get(typist) >= OUTAGE_MARKERS && has(witness, typist.last),
          { describe: () => `${typist.typed.length - cut.get(typist)} typed, last ${typist.last}` })
      }
    }
    // And the outage is real: no edit made during it has crossed to the other node. (Checked
    // so that the recovery below is shown to be a recovery.)
    for (const r of rooms) {
      for (const [typist, others] of [[r.typistA, [r.writerB, r.witnessB]], [r.typistB, [r.writerA, r.witnessA]]]) {
        const crossed = typist.typed.slice(cut.get(typist)).filter(m => others.some(o => has(o, m)))
        assert.deepEqual(crossed, [], `${r.room}: edits that crossed nodes while Redis was down`)
      }
    }
  })

  await redis.restart()
  const outageMs = Date.now() - outageStart
  await redisState([A, B], 'connected', { timeout: RECOVERY_TIMEOUT_MS })
  const back = new Map(typists.map(t => [t, t.typed.length]))
  await waitFor(`every writer to type ${RECOVERY_MARKERS} markers after Redis is back`,
    () => typists.every(t => t.typed.length - back.get(t) >= RECOVERY_MARKERS))
  typists.forEach(t => t.stop())

  await t.test('after Redis is back every client has every edit', async () => {
    const started = Date.now()
    for (const r of rooms) {
      const expected = new Set([...r.typistA.typed, ...r.typistB.typed])
      await converged([r.writerA, r.witnessA, r.writerB, r.witnessB], expected, { timeout: RECOVERY_TIMEOUT_MS })
    }
    t.diagnostic(`Redis down for ${outageMs} ms; converged ${Date.now() - started} ms after typing stopped; ` +
      `${typists.map(t => `${t.tag}: ${t.typed.length - cut.get(t)}/${t.typed.length} typed after the kill`).join(', ')}`)
  })

  await t.test('presence crosses the nodes again', async () => {
    for (const r of rooms) {
      await waitFor(`${r.room}: each writer to see the other node's writer`, () =>
        r.writerA.seenName(r.writerB) === r.writerB.name && r.writerB.seenName(r.writerA) === r.writerA.name)
    }
  })
})
