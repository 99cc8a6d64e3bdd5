// A client that edited offline and types the moment its socket reopens: that edit reaches the
// server before the sync step 2 carrying the offline edits, so it starts past the server's clock
// for the client. The server must hold it until the step 2 arrives, never close the client.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as Y from 'yjs'
import { openSynced } from './lib/client.mjs'
import { startServer } from './lib/server.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

/** Close codes a server sends to refuse a client (anything but normal closure, going away and
 * the codes that mean "no close frame"). */
const refusal = code => code !== null && code !== 1000 && code !== 1001 && code !== 1005 && code !== 1006

const ROUNDS = 6

test('typing the moment the socket reopens after offline edits is never refused', { timeout: 90_000 }, async t => {
  const cleanup = new Cleanup(t)
  const server = await startServer({ cleanup })
  const [writer, reader] = await openSynced(cleanup, server.url, 'reconnect-typing', ['writer', 'reader'])
  writer.text().insert(0, 'start.')
  await reader.hasText('start.')

  let typedOnOpen = 0
  writer.provider.on('status', ({ status }) => {
    // Inside the provider's open handler: before the server's sync step 1 can even arrive.
    if (status === 'connected') {
      const text = writer.text()
      text.insert(text.length, `[open ${typedOnOpen++}]`)
    }
  })

  for (let round = 0; round < ROUNDS; round++) {
    writer.provider.disconnect()
    await waitFor('the writer to be offline', () => !writer.provider.wsconnected)
    const text = writer.text()
    for (let i = 0; i < 5; i++) text.insert(text.length, `(offline ${round}.${i})`)
    writer.provider.connect()
    await waitFor('the writer to reconnect', () => writer.provider.wsconnected)
    // And a few keystrokes right after, while sync is still under way.
    for (let i = 0; i < 3; i++) text.insert(text.length, `<${round}.${i}>`)
    await writer.synced()
  }

  const sameState = () =>
    Buffer.from(Y.encodeStateVector(writer.doc)).equals(Buffer.from(Y.encodeStateVector(reader.doc))) &&
    writer.text().toString() === reader.text().toString()
  await waitFor('the reader to converge with the writer', sameState, {
    describe: () => `writer ${JSON.stringify(writer.text().toString())}, reader ${JSON.stringify(reader.text().toString())}`
  })

  assert.equal(typedOnOpen, ROUNDS, 'an edit was typed at every reopen')
  const expected = ['start.']
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < 5; i++) expected.push(`(offline ${round}.${i})`)
    expected.push(`[open ${round}]`)
    for (let i = 0; i < 3; i++) expected.push(`<${round}.${i}>`)
  }
  // Every piece is there exactly once (the order of an open-edit and the offline ones is the
  // writer's own, so compare as the writer sees it).
  const final = reader.text().toString()
  for (const piece of expected) {
    assert.equal(final.split(piece).length - 1, 1, `"${piece}" exactly once in ${JSON.stringify(final)}`)
  }
  // The case under test really happened: the server held edits that arrived before their step 2.
  const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text()
  const held = Number(/^chorus_updates_held_total (\d+)/m.exec(metrics)?.[1] ?? 0)
  assert.ok(held > 0, `the server held no update, so no edit overtook its step 2:\n${metrics}`)
  assert.deepEqual(writer.closes.filter(refusal), [], 'no refusal reached the writer')
  assert.deepEqual(reader.closes.filter(refusal), [], 'no refusal reached the reader')
})
