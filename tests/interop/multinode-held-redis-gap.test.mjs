// Updates a node holds (a client that typed as its socket reopened, before the sync step 2 with
// its offline edits) survive a Redis outage like the rest of the room: held and applied on the
// writer's node while Redis is down, and on the other node once Redis is back.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as Y from 'yjs'
import { openSynced } from './lib/client.mjs'
import { redisState, relayPrefix, startNode } from './lib/cluster.mjs'
import { startRedis } from './lib/redis.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

const refusal = code => code !== null && code !== 1000 && code !== 1001 && code !== 1005 && code !== 1006

const sameState = (a, b) =>
  Buffer.from(Y.encodeStateVector(a.doc)).equals(Buffer.from(Y.encodeStateVector(b.doc))) &&
  a.text().toString() === b.text().toString()

test('held updates survive a Redis outage', { timeout: 120_000 }, async t => {
  const cleanup = new Cleanup(t)
  const redis = await startRedis({ cleanup })
  const prefix = relayPrefix()
  const [A, B] = await Promise.all(['A', 'B'].map(name => startNode(cleanup, redis, prefix, { name })))
  await redisState([A, B], 'connected')
  const room = 'multinode-held-redis-gap'
  const [writer] = await openSynced(cleanup, A.url, room, ['writer'])
  const [reader] = await openSynced(cleanup, B.url, room, ['reader'])
  writer.text().insert(0, 'before.')
  await reader.hasText('before.')

  await redis.kill()
  await redisState([A, B], 'disconnected')

  // Offline edits, then an edit typed the moment the socket reopens: it reaches node A before
  // the step 2 that carries the offline ones, so A holds it, with no Redis to ask anything of.
  writer.provider.disconnect()
  await waitFor('the writer to be offline', () => !writer.provider.wsconnected)
  const text = writer.text()
  for (let i = 0; i < 5; i++) text.insert(text.length, `(offline ${i})`)
  const onOpen = ({ status }) => {
    if (status === 'connected') text.insert(text.length, '[typed on open]')
  }
  writer.provider.on('status', onOpen)
  writer.provider.connect()
  await writer.synced()
  writer.provider.off('status', onOpen)
  text.insert(text.length, '(during the outage)')
  const metrics = await (await fetch(`${A.httpUrl}/metrics`)).text()
  const held = Number(/^chorus_updates_held_total (\d+)/m.exec(metrics)?.[1] ?? 0)
  assert.ok(held > 0, 'node A held the edit that overtook its step 2')
  // A serves all of it while Redis is down.
  const [witness] = await openSynced(cleanup, A.url, room, ['witness'])
  await waitFor('node A to serve every edit during the outage', () => sameState(witness, writer))

  await redis.restart()
  await redisState([A, B], 'connected')
  await waitFor('the reader on node B to converge with the writer', () => sameState(reader, writer), {
    timeout: 30_000,
    describe: () => `writer ${JSON.stringify(writer.text().toString())}, reader ${JSON.stringify(reader.text().toString())}`
  })
  for (const piece of ['before.', '(offline 4)', '[typed on open]', '(during the outage)']) {
    assert.ok(reader.text().toString().includes(piece), `"${piece}" reached node B`)
  }
  for (const client of [writer, reader, witness]) {
    assert.deepEqual(client.closes.filter(refusal), [], `no refusal reached ${client.describe()}`)
  }
})
