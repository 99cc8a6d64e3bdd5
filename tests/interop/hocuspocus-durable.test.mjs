// The durable acknowledgement: a Hocuspocus provider's `unsyncedChanges` reaches 0 only once
// its edits are in the update log. The server is killed with SIGKILL the moment the provider
// reports 0 (no shutdown, no snapshot) and restarted on the same data dir; every acknowledged
// edit must be there.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { hocusUrl, openHocus } from './lib/hocuspocus.mjs'
import { makeDataDir, removeDataDir, startServer } from './lib/server.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

const ROUNDS = 4

for (const fsync of ['always', '1s']) {
  test(`acknowledged edits survive SIGKILL (--fsync ${fsync})`, { timeout: 120_000 }, async t => {
    const cleanup = new Cleanup(t)
    const dataDir = makeDataDir()
    cleanup.defer(() => removeDataDir(dataDir))
    const args = ['--fsync', fsync]
    const room = `durable-${fsync}`
    let expected = ''
    for (let round = 0; round < ROUNDS; round++) {
      const server = await startServer({ cleanup, dataDir, args })
      const { socket, clients: [client] } = openHocus(cleanup, hocusUrl(server), [room], { version: round % 2 === 0 ? 'v4' : 'v3' })
      await client.synced()
      assert.equal(client.text().toString(), expected, `round ${round}: what was acknowledged before`)
      const words = `round ${round} `
      for (const word of words.split(' ')) client.text().insert(client.text().length, `${word} `)
      client.doc.getMap('rounds').set(`r${round}`, round)
      expected = client.text().toString()
      await client.acknowledged()
      await server.kill()
      // The next server must not get the edit again from this provider: it is destroyed (once
      // it has seen its socket close, or its reconnect loop would outlive the test).
      await waitFor('the provider to see the server gone', () => socket.closes.length > 0)
      client.destroy()
      socket.destroy()
    }
    const server = await startServer({ cleanup, dataDir, args })
    const { clients: [reader] } = openHocus(cleanup, hocusUrl(server), [room])
    await reader.synced()
    assert.equal(reader.text().toString(), expected)
    assert.equal(reader.doc.getMap('rounds').size, ROUNDS)
  })
}

test('SIGTERM with Hocuspocus clients connected: exit 0, sockets closed with 1001, edits kept', { timeout: 60_000 }, async t => {
  const cleanup = new Cleanup(t)
  const dataDir = makeDataDir()
  cleanup.defer(() => removeDataDir(dataDir))
  const server = await startServer({ cleanup, dataDir })
  const { socket, clients: [a, b] } = openHocus(cleanup, hocusUrl(server), ['sigterm-a', 'sigterm-b'])
  await Promise.all([a.synced(), b.synced()])
  a.text().insert(0, 'kept a')
  b.text().insert(0, 'kept b')
  await Promise.all([a.acknowledged(), b.acknowledged()])
  const { code, signal } = await server.stop()
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, server.logs.tail())
  await waitFor('the socket to be closed', () => socket.closes.length > 0)
  assert.equal(socket.closes[0], 1001)
  socket.destroy()
  const again = await startServer({ cleanup, dataDir })
  const { clients: [ra, rb] } = openHocus(cleanup, hocusUrl(again), ['sigterm-a', 'sigterm-b'])
  await Promise.all([ra.synced(), rb.synced()])
  assert.equal(ra.text().toString(), 'kept a')
  assert.equal(rb.text().toString(), 'kept b')
})
