// Multi-node case 4: node C starts after clients on A and B have edited a document. C's data
// dir is empty, so a client on C can only get the document through the relay's state-vector
// exchange with the nodes that hold it.

import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import * as Y from 'yjs'
import { openSynced } from './lib/client.mjs'
import { redisState, relayPrefix, startNode } from './lib/cluster.mjs'
import { converged, insertMarker, prng } from './lib/markers.mjs'
import { startRedis } from './lib/redis.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

const ROOM = 'multinode-late-node'

/** C asks for the document when it loads the room; the answer crosses Redis once. */
const FETCH_TIMEOUT_MS = 15_000

/** Map entries in key order: a Y.Map iterates in the order its entries reached each client. */
const mapEntries = client => JSON.stringify(Object.entries(client.doc.getMap('meta').toJSON()).sort())

const sameDoc = (x, y) =>
  Buffer.from(Y.encodeStateVector(x.doc)).equals(Buffer.from(Y.encodeStateVector(y.doc))) &&
  x.text().toString() === y.text().toString() &&
  mapEntries(x) === mapEntries(y) &&
  JSON.stringify(x.doc.getArray('log').toJSON()) === JSON.stringify(y.doc.getArray('log').toJSON())

test('a node started late gets the document from the others', { timeout: 120_000 }, async t => {
  const cleanup = new Cleanup(t)
  const redis = await startRedis({ cleanup })
  const prefix = relayPrefix()
  const [A, B] = await Promise.all(['A', 'B'].map(name => startNode(cleanup, redis, prefix, { name })))
  await redisState([A, B], 'connected')
  const [a] = await openSynced(cleanup, A.url, ROOM, ['alice'])
  const [b] = await openSynced(cleanup, B.url, ROOM, ['bob'])

  // Edits on both nodes and of three shared types, with deletes, so C needs the merged history
  // of several clients, not one update.
  const rand = prng(0x1a7e)
  const expected = new Set()
  for (let i = 0; i < 60; i++) {
    const [client, tag] = i % 2 === 0 ? [a, 'a'] : [b, 'b']
    const marker = `[${tag}-${i}]`
    insertMarker(client.text(), marker, rand)
    expected.add(marker)
    client.doc.getArray('log').push([`${tag}${i}`])
    if (i % 10 < 2) client.doc.getMap('meta').set(`${tag}-note`, `note ${i} from ${tag}`)
  }
  a.doc.getArray('log').delete(0, 5)
  await converged([a, b], expected)
  await waitFor('A and B to hold the same document', () => sameDoc(a, b))

  const C = await startNode(cleanup, redis, prefix, { name: 'C' })
  // Dot files are the store's own (the write-ahead log's recovery lock), not documents; so is
  // the version store's directory while it holds no document's history.
  const emptyVersions = (name) =>
    name === 'versions' && readdirSync(join(C.dataDir, name)).length === 0
  const documents = readdirSync(C.dataDir).filter(
    (name) => !name.startsWith('.') && !emptyVersions(name),
  )
  assert.deepEqual(documents, [], 'C must start with no document on disk')
  await redisState([C], 'connected')

  const [c] = await openSynced(cleanup, C.url, ROOM, ['carol'])
  await waitFor('the client on C to get the whole document', () => sameDoc(c, a), {
    timeout: FETCH_TIMEOUT_MS,
    describe: () => `C text ${c.text().length} chars, log ${c.doc.getArray('log').length} items; ` +
      `A text ${a.text().length} chars, log ${a.doc.getArray('log').length} items`
  })
  assert.deepEqual(c.doc.getArray('log').toArray(), a.doc.getArray('log').toArray())
  assert.equal(c.doc.getMap('meta').get('b-note'), 'note 51 from b')

  await t.test('edits on C reach A and B, and presence crosses', async () => {
    const marker = '[c-late]'
    insertMarker(c.text(), marker, () => 0)
    expected.add(marker)
    await converged([a, b, c], expected)
    await waitFor('alice and bob to see carol, carol to see them', () =>
      a.seenName(c) === 'carol' && b.seenName(c) === 'carol' && c.seenName(a) === 'alice' && c.seenName(b) === 'bob')
  })
})
