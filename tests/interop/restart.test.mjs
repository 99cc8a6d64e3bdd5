// Case 3: SIGTERM flushes snapshots and exits 0; a new server on the same data dir has the documents.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { openClient, openSynced } from './lib/client.mjs'
import { makeDataDir, removeDataDir, startServer, STOP_TIMEOUT_MS } from './lib/server.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

// One plain name and one that needs percent-encoding and maps to a nested-looking path, so the
// store's name-to-file mapping is exercised too.
const DOCS = ['restart-plain', 'team/notes/plan ü ✓']

/** Close code the server promises for sockets it closes on shutdown ("going away"). */
const GOING_AWAY = 1001

test('documents survive a SIGTERM restart', { timeout: 60_000 }, async t => {
  const cleanup = new Cleanup(t)
  const dataDir = makeDataDir()
  cleanup.defer(() => removeDataDir(dataDir))

  const expected = new Map()
  const first = await startServer({ cleanup, dataDir })
  const writers = []
  for (const [i, doc] of DOCS.entries()) {
    const [writer, witness] = await openSynced(cleanup, first.url, doc, [`writer${i}`, `witness${i}`])
    const text = writer.text()
    text.insert(0, `first words in ${doc}`)
    text.insert(text.length, ', more words')
    text.delete(0, 6)
    writer.doc.getMap('meta').set('title', `title of ${doc}`)
    const want = text.toString()
    expected.set(doc, want)
    // The witness proves the server has applied the edits before we stop it; without it SIGTERM
    // could race the update frames still in flight.
    await witness.hasText(want)
    await waitFor(`${doc} map to reach the witness`, () => witness.doc.getMap('meta').get('title') === `title of ${doc}`)
    writers.push(writer, witness)
  }

  const { code, signal } = await first.stop({ timeout: STOP_TIMEOUT_MS })
  assert.equal(signal, null, 'chorus was killed by a signal instead of exiting')
  assert.equal(code, 0, `chorus exited with ${code} after SIGTERM\n${first.logs.tail()}`)
  // `--log-format json` promises one JSON object per stdout line, shutdown included.
  assert.deepEqual(first.logs.nonJsonStdoutLines, [], 'stdout lines that are not JSON')
  for (const client of writers) {
    await waitFor(`${client.describe()} to see its socket closed`, () => client.closes.length > 0)
    assert.equal(client.closes[0], GOING_AWAY, `${client.describe()} close code`)
    // Stop it from reconnecting to a port nobody listens on any more.
    client.destroy()
  }

  const second = await startServer({ cleanup, dataDir })
  for (const doc of DOCS) {
    const reader = openClient(cleanup, second.url, doc, { name: 'reader' })
    await reader.synced()
    // The server's step 2 carries the whole document and is applied before `synced` flips.
    assert.equal(reader.text().toString(), expected.get(doc), `${doc} after restart`)
    assert.equal(reader.doc.getMap('meta').get('title'), `title of ${doc}`)
  }

  await t.test('a fresh data dir does not have them', async () => {
    // Guards the check above: the content must come from the data dir, not from anywhere else.
    const blank = await startServer({ cleanup })
    const reader = openClient(cleanup, blank.url, DOCS[0], { name: 'blank-reader' })
    await reader.synced()
    assert.equal(reader.text().toString(), '')
  })
})
