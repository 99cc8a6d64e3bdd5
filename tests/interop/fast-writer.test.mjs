// Issue #15: a fast, honest writer (a script inserting in a loop, one update message per insert)
// is slowed down by the per-connection rate limits, never closed, and loses nothing.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { openSynced } from './lib/client.mjs'
import { startServer } from './lib/server.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

const INSERTS = 10_240
const INSERT_BYTES = 1024

/** The i-th insert: its number, then filler up to INSERT_BYTES, so a lost or repeated one shows. */
const chunk = i => `<${i}>`.padEnd(INSERT_BYTES, String.fromCharCode(97 + (i % 26)))

/**
 * A guard against a hang, not a measure: a debug build on a loaded 2-core box ingests the ~10 MiB
 * far faster than this, and the test asserts only what arrived and that nobody was closed.
 */
const DELIVERY_TIMEOUT_MS = 240_000

test('a writer inserting 10,240 times without a transaction is never closed', { timeout: 300_000 }, async t => {
  const cleanup = new Cleanup(t)
  // The server's default limits: this is what any honest script meets.
  const server = await startServer({ cleanup })
  const [writer, reader] = await openSynced(cleanup, server.url, 'fast-writer', ['writer', 'reader'])

  // No transaction around the loop: Yjs sends one update message per insert. Each piece goes in
  // at the start: appended at the end, consecutive pieces merge into one Yjs item, and Yjs then
  // copies the whole merged string to encode every following update (minutes of client CPU for
  // this loop, whatever the server).
  const text = writer.text()
  for (let i = 0; i < INSERTS; i++) text.insert(0, chunk(i))
  const expected = text.toString()
  assert.equal(expected.length, INSERTS * INSERT_BYTES)

  await waitFor('the reader to hold every insert', () => reader.text().length === expected.length, {
    timeout: DELIVERY_TIMEOUT_MS,
    describe: () => `reader has ${reader.text().length} of ${expected.length} characters; ` +
      `writer closes ${JSON.stringify(writer.closes)}, reader closes ${JSON.stringify(reader.closes)}`
  })
  assert.ok(reader.text().toString() === expected, 'the reader holds the same content, in order')

  // A round trip after the flood: the writer's socket still carries edits both ways.
  reader.text().insert(0, '<after>')
  await writer.hasText(`<after>${expected}`)

  assert.deepEqual(writer.closes, [], 'the writer never saw a close')
  assert.ok(!writer.statuses.includes('disconnected'), `writer statuses ${JSON.stringify(writer.statuses)}`)
  // The reader shares this process with the writer, so it reads nothing while the loop runs;
  // if what the server fans out to it meanwhile overflows its outbox, it is closed as a slow
  // client (1013) and resyncs, by design. Any other close is a failure.
  assert.ok(reader.closes.every(code => code === 1013), `reader closes ${JSON.stringify(reader.closes)}`)
  assert.ok(writer.provider.wsconnected && reader.provider.wsconnected)
})
