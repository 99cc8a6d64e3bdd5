// Multi-node case 1: clients on three nodes that share one Redis converge on a Y.Text, and
// presence set on one node is seen on the others and removed from them when the client leaves.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { openSynced } from './lib/client.mjs'
import { redisState, relayPrefix, startNode } from './lib/cluster.mjs'
import { converged, deleteMarker, insertMarker, prng } from './lib/markers.mjs'
import { startRedis } from './lib/redis.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

// Well under the 30 s after which y-protocols drops a silent peer's state by itself, so a
// removal seen here was announced through the nodes, not timed out by the observer.
const REMOVAL_TIMEOUT_MS = 10_000

/** Convergence across nodes takes two relay hops more than on one node; allow for a busy box. */
const CONVERGE_TIMEOUT_MS = 20_000

test('clients on three nodes converge and see each other', { timeout: 120_000 }, async t => {
  const cleanup = new Cleanup(t)
  const redis = await startRedis({ cleanup })
  const prefix = relayPrefix()
  const nodes = await Promise.all(['A', 'B', 'C'].map(name => startNode(cleanup, redis, prefix, { name })))
  await redisState(nodes, 'connected')
  const [A, B, C] = nodes
  const room = 'multinode-converge'
  const [a] = await openSynced(cleanup, A.url, room, ['alice'])
  const [b] = await openSynced(cleanup, B.url, room, ['bob'])
  const [c] = await openSynced(cleanup, C.url, room, ['carol'])
  const clients = [a, b, c]
  const expected = new Set()

  await t.test('an edit on each node reaches the other two', async () => {
    // One at a time and awaited, so each hop (A→B,C then B→A,C then C→A,B) is proven alone.
    for (const [client, tag] of [[a, 'a'], [b, 'b'], [c, 'c']]) {
      const marker = `[${tag}-first]`
      insertMarker(client.text(), marker, () => 0.99)
      expected.add(marker)
      await converged(clients, expected, { timeout: CONVERGE_TIMEOUT_MS })
    }
    // Each marker was appended last in turn: the order proves nothing was reordered either.
    assert.equal(a.text().toString(), '[a-first][b-first][c-first]')
  })

  await t.test('concurrent inserts and deletes on all three nodes converge', async () => {
    const seed = 0x5eed
    const rand = prng(seed)
    const own = new Map(clients.map(client => [client, []]))
    const tags = new Map([[a, 'a'], [b, 'b'], [c, 'c']])
    let deletes = 0
    for (let i = 0; i < 240; i++) {
      const client = clients[Math.floor(rand() * clients.length)]
      const mine = own.get(client)
      if (mine.length > 0 && rand() < 0.25) {
        // Only a marker's author deletes it, so no two deletes compete and the expected set
        // stays exact.
        const [marker] = mine.splice(Math.floor(rand() * mine.length), 1)
        assert.ok(deleteMarker(client.text(), marker), `${marker} vanished from its author's text`)
        expected.delete(marker)
        deletes++
      } else {
        const marker = `[${tags.get(client)}-${i}]`
        insertMarker(client.text(), marker, rand)
        mine.push(marker)
        expected.add(marker)
      }
      // Yield now and then so some updates cross the nodes while others are still local.
      if (i % 6 === 0) await new Promise(resolve => setImmediate(resolve))
    }
    assert.ok(deletes > 0, 'the edit mix should include deletes')
    await converged(clients, expected, { timeout: CONVERGE_TIMEOUT_MS })
    for (const tag of tags.values()) {
      assert.ok([...expected].some(m => m.startsWith(`[${tag}-`)), `no surviving edit from ${tag} (seed ${seed})`)
    }
  })

  await t.test('presence from A is seen on B and C, and removed when A leaves', async () => {
    await waitFor('B and C to see alice', () => b.seenName(a) === 'alice' && c.seenName(a) === 'alice')
    await waitFor('A to see bob and carol', () => a.seenName(b) === 'bob' && a.seenName(c) === 'carol')
    a.awareness.setLocalStateField('cursor', { anchor: 2, head: 7 })
    await waitFor('B and C to see alice\'s cursor', () =>
      [b, c].every(o => o.awareness.getStates().get(a.id)?.cursor?.head === 7))

    const removals = new Map([b, c].map(observer => {
      const removed = new Set()
      observer.awareness.on('change', ({ removed: ids }) => ids.forEach(id => removed.add(id)))
      return [observer, removed]
    }))
    a.destroy()
    await waitFor('B and C to see alice removed', () =>
      [b, c].every(o => removals.get(o).has(a.id) && !o.awareness.getStates().has(a.id)),
    {
      timeout: REMOVAL_TIMEOUT_MS,
      describe: () => [b, c].map(o => `${o.describe()} has ${JSON.stringify([...o.awareness.getStates().keys()])}`).join('; ')
    })
    // A client drops every remote state itself when its own socket closes; make sure the
    // observers stayed connected, so the removal came from the nodes.
    for (const observer of [b, c]) {
      assert.deepEqual(observer.statuses.filter(s => s === 'disconnected'), [], `${observer.describe()} statuses`)
      assert.ok(observer.provider.wsconnected, `${observer.describe()} is connected`)
    }
    assert.equal(b.seenName(c), 'carol', 'carol\'s presence went away with alice\'s')
  })
})
