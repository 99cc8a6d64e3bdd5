// A `gc: false` client (as version-history setups use) types inside a paragraph while offline;
// meanwhile another client deletes that paragraph, and the server restarts, reloading the
// document from its snapshot, where the paragraph's content is garbage-collected. The `gc: false`
// client's edits point at that garbage. The server must take them as Yjs does (they become
// garbage too), not refuse the client on every reconnect, and everyone must converge.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as Y from 'yjs'
import { openClient, openSynced } from './lib/client.mjs'
import { makeDataDir, removeDataDir, startServer } from './lib/server.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

const refusal = code => code !== null && code !== 1000 && code !== 1001 && code !== 1005 && code !== 1006

const paragraphs = doc => doc.getXmlFragment('doc').toString()

const sameState = (a, b) =>
  Buffer.from(Y.encodeStateVector(a.doc)).equals(Buffer.from(Y.encodeStateVector(b.doc))) &&
  paragraphs(a.doc) === paragraphs(b.doc)

test('a gc: false client that edited inside deleted content is taken after a restart', { timeout: 90_000 }, async t => {
  const cleanup = new Cleanup(t)
  const dataDir = makeDataDir()
  cleanup.defer(() => removeDataDir(dataDir))
  const first = await startServer({ cleanup, dataDir })
  const room = 'gc-false-restart'
  const keeper = openClient(cleanup, first.url, room, { name: 'keeper', gc: false })
  const [deleter] = await openSynced(cleanup, first.url, room, ['deleter'])
  await keeper.synced()

  // Two paragraphs; the keeper will type into the first, the deleter will delete it.
  const fragment = deleter.doc.getXmlFragment('doc')
  deleter.doc.transact(() => {
    for (const words of ['first paragraph here', 'second paragraph stays']) {
      const p = new Y.XmlElement('paragraph')
      p.insert(0, [new Y.XmlText(words)])
      fragment.push([p])
    }
  })
  await waitFor('the keeper to have both paragraphs', () => sameState(keeper, deleter))

  keeper.provider.disconnect()
  await waitFor('the keeper to be offline', () => !keeper.provider.wsconnected)
  const text = keeper.doc.getXmlFragment('doc').get(0).get(0)
  for (let i = 0; i < 5; i++) text.insert(6 + i * 3, `<${i}>`)
  text.format(0, 5, { bold: true })

  fragment.delete(0, 1)
  // A witness proves the deletion reached the server before it stops.
  const witness = openClient(cleanup, first.url, room, { name: 'witness' })
  await waitFor('the deletion to reach the server', () => witness.provider.synced && paragraphs(witness.doc) === paragraphs(deleter.doc))
  witness.destroy()

  // A restart, as in a rolling update: the document comes back from its snapshot, garbage and all.
  const { code } = await first.stop()
  assert.equal(code, 0)
  const second = await startServer({ cleanup, dataDir, listen: first.addr })

  // The keeper comes back several times; it must never be refused.
  for (let round = 0; round < 3; round++) {
    keeper.provider.connect()
    await keeper.synced()
    await waitFor('the keeper and the deleter to converge', () => sameState(keeper, deleter), {
      describe: () => `keeper ${paragraphs(keeper.doc)}, deleter ${paragraphs(deleter.doc)}, keeper closes ${JSON.stringify(keeper.closes)}`
    })
    keeper.provider.disconnect()
    await waitFor('the keeper to be offline', () => !keeper.provider.wsconnected)
  }

  const late = openClient(cleanup, second.url, room, { name: 'late' })
  await late.synced()
  await waitFor('a late joiner to read what everyone reads', () => sameState(late, deleter))
  assert.equal(paragraphs(late.doc), '<paragraph>second paragraph stays</paragraph>')
  assert.deepEqual(keeper.closes.filter(refusal), [], 'no refusal reached the gc: false client')
  assert.deepEqual(deleter.closes.filter(refusal), [], 'no refusal reached the other client')
})
