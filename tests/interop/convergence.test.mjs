// Case 1: two providers on one document converge on a Y.Text, sequential and concurrent edits.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as Y from 'yjs'
import { openSynced } from './lib/client.mjs'
import { startServer } from './lib/server.mjs'
import { prng } from './lib/markers.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

function randomEdit (text, rand, tag) {
  const len = text.length
  if (len > 0 && rand() < 0.3) {
    const at = Math.floor(rand() * len)
    text.delete(at, Math.min(len - at, 1 + Math.floor(rand() * 3)))
  } else {
    text.insert(Math.floor(rand() * (len + 1)), `${tag}${Math.floor(rand() * 10)}`)
  }
}

const sameState = (a, b) =>
  Buffer.from(Y.encodeStateVector(a.doc)).equals(Buffer.from(Y.encodeStateVector(b.doc))) &&
  a.text().toString() === b.text().toString()

test('two providers converge on a Y.Text', { timeout: 60_000 }, async t => {
  const cleanup = new Cleanup(t)
  const server = await startServer({ cleanup })
  const [a, b] = await openSynced(cleanup, server.url, 'convergence', ['alice', 'bob'])

  await t.test('edit from A reaches B', async () => {
    a.text().insert(0, 'hello')
    await b.hasText('hello')
  })

  await t.test('edit from B reaches A', async () => {
    b.text().insert(5, ' world')
    await a.hasText('hello world')
  })

  await t.test('deletes travel too', async () => {
    a.text().delete(0, 6)
    await b.hasText('world')
  })

  await t.test('concurrent inserts at the same position converge', async () => {
    // Both edits are made before either side can have seen the other's.
    a.text().insert(0, 'A')
    b.text().insert(0, 'B')
    await waitFor('A and B to hold the same text', () => sameState(a, b), {
      describe: () => `A=${JSON.stringify(a.text().toString())} B=${JSON.stringify(b.text().toString())}`
    })
    const result = a.text().toString()
    assert.ok(result === 'ABworld' || result === 'BAworld', `unexpected merge ${JSON.stringify(result)}`)
  })

  await t.test('interleaved random edits on both sides converge', async () => {
    const seed = 0xc0ffee
    const rand = prng(seed)
    for (let i = 0; i < 200; i++) {
      const [who, tag] = rand() < 0.5 ? [a, 'a'] : [b, 'b']
      randomEdit(who.text(), rand, tag)
      // Yield now and then so some updates cross on the wire while others are still local.
      if (i % 7 === 0) await new Promise(resolve => setImmediate(resolve))
    }
    await waitFor(`A and B to converge (seed ${seed})`, () => sameState(a, b), {
      describe: () => `A=${JSON.stringify(a.text().toString())} B=${JSON.stringify(b.text().toString())}`
    })
    // Both clients edited, so a converged doc must hold items from both.
    const merged = a.text().toString()
    assert.match(merged, /a\d/)
    assert.match(merged, /b\d/)
  })

  await t.test('a third client syncing from the server sees the converged text', async () => {
    const [c] = await openSynced(cleanup, server.url, 'convergence', ['carol'])
    await c.hasText(a.text().toString())
  })
})
