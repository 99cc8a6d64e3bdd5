// Case 2: awareness states travel both ways, and disappear on destroy() and on a killed socket.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { openSynced } from './lib/client.mjs'
import { startServer } from './lib/server.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

// Must stay well under the client's own 30 s awareness expiry (y-protocols `outdatedTimeout`):
// otherwise a removal could come from the observer timing the state out locally, and the test
// would pass without the server broadcasting anything.
const REMOVAL_TIMEOUT_MS = 10_000

/** Records every client id the server told `observer` was removed. */
function watchRemovals (observer) {
  const removed = new Set()
  observer.awareness.on('change', ({ removed: ids }) => ids.forEach(id => removed.add(id)))
  return removed
}

test('awareness between two providers', { timeout: 60_000 }, async t => {
  const cleanup = new Cleanup(t)
  const server = await startServer({ cleanup })

  await t.test('each sees the other, and updates to a state', async () => {
    const [a, b] = await openSynced(cleanup, server.url, 'awareness-basic', ['alice', 'bob'])
    await waitFor('B to see alice', () => b.seenName(a) === 'alice')
    await waitFor('A to see bob', () => a.seenName(b) === 'bob')

    a.awareness.setLocalStateField('user', { name: 'alice (away)' })
    await waitFor('B to see the renamed alice', () => b.seenName(a) === 'alice (away)')
    a.awareness.setLocalStateField('cursor', { anchor: 3, head: 5 })
    await waitFor('B to see alice\'s cursor', () => b.awareness.getStates().get(a.id)?.cursor?.head === 5)
  })

  await t.test('destroy() removes the state at the other side', async () => {
    const [a, b] = await openSynced(cleanup, server.url, 'awareness-destroy', ['alice', 'bob'])
    await waitFor('B to see alice', () => b.seenName(a) === 'alice')
    const removals = watchRemovals(b)

    a.destroy()
    await waitFor('B to see alice removed', () => removals.has(a.id) && !b.awareness.getStates().has(a.id),
      { timeout: REMOVAL_TIMEOUT_MS })
    // A client drops remote states itself when its own socket closes; make sure that is not
    // what happened here.
    assert.deepEqual(b.statuses.filter(s => s === 'disconnected'), [])
    assert.ok(b.provider.wsconnected)
  })

  await t.test('a killed socket removes the state at the other side', async () => {
    const [a, b] = await openSynced(cleanup, server.url, 'awareness-kill', ['alice', 'bob'])
    await waitFor('B to see alice', () => b.seenName(a) === 'alice')
    await waitFor('A to see bob', () => a.seenName(b) === 'bob')
    const removals = watchRemovals(b)

    // No awareness "null" is sent this way: only the server noticing the disconnect can tell B.
    a.killSocket()
    await waitFor('B to see alice removed after her socket died',
      () => removals.has(a.id) && !b.awareness.getStates().has(a.id),
      { timeout: REMOVAL_TIMEOUT_MS, describe: () => JSON.stringify([...b.awareness.getStates().entries()]) })
    assert.deepEqual(b.statuses.filter(s => s === 'disconnected'), [])
    assert.ok(b.provider.wsconnected)
    // B's own state is still there for a new peer.
    const [c] = await openSynced(cleanup, server.url, 'awareness-kill', ['carol'])
    await waitFor('a new peer to see bob', () => c.seenName(b) === 'bob')
    assert.equal(c.awareness.getStates().has(a.id), false, 'the killed client\'s state lingers on the server')
  })
})
