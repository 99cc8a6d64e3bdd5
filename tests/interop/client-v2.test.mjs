// The older y-websocket 2.1.0 client (npm alias `y-websocket-v2`) against the server, alone and
// mixed with a 3.1.0 client in one room.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { openClient, openSynced } from './lib/client.mjs'
import { startServer } from './lib/server.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

test('y-websocket 2.1.0 client interoperates', { timeout: 60_000 }, async t => {
  const cleanup = new Cleanup(t)
  const server = await startServer({ cleanup })

  await t.test('two v2 clients converge', async () => {
    const [a, b] = await openSynced(cleanup, server.url, 'v2-only', ['alice', 'bob'], { version: 'v2' })
    a.text().insert(0, 'from v2 a')
    await b.hasText('from v2 a')
    b.text().insert(0, '> ')
    await a.hasText('> from v2 a')
    await waitFor('v2 clients to see each other', () => a.seenName(b) === 'bob' && b.seenName(a) === 'alice')
  })

  await t.test('v2 and v3 clients share a room', async () => {
    const old = openClient(cleanup, server.url, 'mixed', { name: 'old', version: 'v2' })
    const cur = openClient(cleanup, server.url, 'mixed', { name: 'new', version: 'v3' })
    await Promise.all([old.synced(), cur.synced()])

    old.text().insert(0, 'v2 says hi')
    await cur.hasText('v2 says hi')
    cur.text().insert(cur.text().length, ', v3 answers')
    await old.hasText('v2 says hi, v3 answers')
    await waitFor('each to see the other\'s awareness', () => old.seenName(cur) === 'new' && cur.seenName(old) === 'old')

    old.destroy()
    await waitFor('v3 to see the v2 client leave', () => !cur.awareness.getStates().has(old.id))
    assert.ok(cur.provider.wsconnected)
  })
})
