// Hocuspocus clients on two nodes sharing one Redis: stateless messages from a client to the
// document's other Hocuspocus clients on every node, and from the HTTP API, never into the
// document; and one room shared by y-websocket and Hocuspocus clients across the nodes.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { openSynced } from './lib/client.mjs'
import { hocusUrl, openHocus } from './lib/hocuspocus.mjs'
import { redisState, relayPrefix, startNode } from './lib/cluster.mjs'
import { startRedis } from './lib/redis.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

const API_KEY = 'hocuspocus-stateless-api-key'

test('hocuspocus across nodes', { timeout: 90_000 }, async t => {
  const cleanup = new Cleanup(t)
  const redis = await startRedis({ cleanup })
  const prefix = relayPrefix()
  const args = ['--api-key', API_KEY]
  const [A, B] = await Promise.all(['A', 'B'].map(name => startNode(cleanup, redis, prefix, { name, args })))
  await redisState([A, B], 'connected')
  const room = 'hocus-stateless'
  const { clients: [onA] } = openHocus(cleanup, hocusUrl(A), [room], { version: 'v4' })
  const { clients: [onB] } = openHocus(cleanup, hocusUrl(B), [room], { version: 'v3' })
  const { clients: [elsewhere] } = openHocus(cleanup, hocusUrl(B), ['hocus-stateless-other'], { version: 'v4' })
  await Promise.all([onA.synced(), onB.synced(), elsewhere.synced()])

  await t.test('a client\'s message reaches the client on the other node, not itself', async () => {
    onA.provider.sendStateless('{"kind":"ping","from":"A"}')
    await waitFor('B to get the message', () => onB.stateless.length > 0,
      { describe: () => JSON.stringify(onB.stateless) })
    assert.deepEqual(onB.stateless, ['{"kind":"ping","from":"A"}'])
    onB.provider.sendStateless('pong from B')
    await waitFor('A to get the answer', () => onA.stateless.includes('pong from B'))
    assert.deepEqual(onA.stateless, ['pong from B'], 'its own message does not come back')
  })

  await t.test('the HTTP API sends one to every client of the document', async () => {
    const response = await fetch(`${B.httpUrl}/api/v1/docs/${room}/stateless`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'text/plain' },
      body: 'from the backend ✓'
    })
    assert.equal(response.status, 204, await response.text())
    await waitFor('both clients to get it', () =>
      onA.stateless.includes('from the backend ✓') && onB.stateless.includes('from the backend ✓'))
  })

  await t.test('nothing reached another document, and the document is unchanged', async () => {
    assert.deepEqual(elsewhere.stateless, [])
    assert.equal(onA.doc.share.size, 0)
  })

  await t.test('y-websocket on one node and Hocuspocus on the other share a room', async () => {
    const name = 'hocus-mixed-nodes'
    const [ywriter] = await openSynced(cleanup, A.url, name, ['erin'])
    const { clients: [h] } = openHocus(cleanup, hocusUrl(B), [name], { user: 'frank' })
    await h.synced()
    ywriter.text().insert(0, 'from A over y-websocket. ')
    await h.hasText('from A over y-websocket. ', 't', { timeout: 20_000 })
    h.text().insert(h.text().length, 'from B over hocuspocus.')
    await h.acknowledged()
    await ywriter.hasText('from A over y-websocket. from B over hocuspocus.', 't', { timeout: 20_000 })
    await waitFor('frank to see erin', () => h.seenName(ywriter) === 'erin', { timeout: 20_000 })
    await waitFor('erin to see frank', () => ywriter.seenName(h) === 'frank', { timeout: 20_000 })
  })
})
