// The pre-authentication queue (Hocuspocus advisory GHSA-xwhh-v746-pj9m): a socket that sends
// more than 1,000 messages, or opens more than 100 documents, before any token is accepted is
// closed with 4205; within the bounds, what waited is served once the token passes.

import assert from 'node:assert/strict'
import { once } from 'node:events'
import { test } from 'node:test'
import WebSocket from 'ws'
import { hocusUrl, openHocus } from './lib/hocuspocus.mjs'
import { startServer } from './lib/server.mjs'
import { Cleanup } from './lib/wait.mjs'

const RESET_CONNECTION = 4205

/** `varString(address) • type`, for addresses shorter than 128 bytes. */
function frame (address, ...body) {
  const name = Buffer.from(address)
  return Buffer.from([name.length, ...name, ...body])
}

const QUERY_AWARENESS = 3

async function rawSocket (cleanup, url) {
  const ws = new WebSocket(url)
  cleanup.defer(() => ws.terminate())
  await once(ws, 'open')
  const closed = once(ws, 'close').then(([code]) => code)
  return { ws, closed }
}

test('the pre-authentication queue is bounded', { timeout: 60_000 }, async t => {
  const cleanup = new Cleanup(t)
  const server = await startServer({ cleanup })
  const url = hocusUrl(server)

  await t.test('1,001 messages before a token: 4205', async () => {
    const { ws, closed } = await rawSocket(cleanup, url)
    for (let i = 0; i < 1001; i++) ws.send(frame('queued', QUERY_AWARENESS))
    assert.equal(await closed, RESET_CONNECTION)
  })

  await t.test('101 documents waiting for a token: 4205', async () => {
    const { ws, closed } = await rawSocket(cleanup, url)
    for (let i = 0; i < 101; i++) ws.send(frame(`doc-${i}`, QUERY_AWARENESS))
    assert.equal(await closed, RESET_CONNECTION)
  })

  await t.test('within the bounds, an honest provider is served', async () => {
    const { socket, clients: [client] } = openHocus(cleanup, url, ['queued-honest'])
    await client.synced()
    client.text().insert(0, 'queued fine')
    await client.acknowledged()
    assert.deepEqual(socket.closes, [])
  })
})
