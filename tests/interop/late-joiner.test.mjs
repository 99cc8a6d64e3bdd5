// Case 4: a client joining a busy room gets the full document and the others' awareness.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { openClient, openSynced } from './lib/client.mjs'
import { startServer } from './lib/server.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

test('a late joiner gets the full state while others are connected', { timeout: 60_000 }, async t => {
  const cleanup = new Cleanup(t)
  const server = await startServer({ cleanup })
  const room = 'late-joiner'
  const [a, b] = await openSynced(cleanup, server.url, room, ['alice', 'bob'])

  // Many small updates from both sides, so the joiner's state comes from the merged history of
  // several clients rather than one update.
  for (let i = 0; i < 50; i++) {
    a.text().insert(a.text().length, `a${i} `)
    b.doc.getArray('log').push([`b${i}`])
  }
  await waitFor('B to see all of A\'s text', () => b.text().toString().endsWith('a49 '))
  b.text().insert(0, '[bob] ')
  await waitFor('A and B to converge', () =>
    a.text().toString() === b.text().toString() && a.doc.getArray('log').length === 50)
  const text = a.text().toString()
  assert.ok(text.startsWith('[bob] a0 ') && text.endsWith('a49 '), `unexpected text ${JSON.stringify(text)}`)

  const c = openClient(cleanup, server.url, room, { name: 'carol' })
  await c.synced()
  // Step 2 is applied before `synced` flips, so the content must be complete right now.
  assert.equal(c.text().toString(), text)
  assert.deepEqual(c.doc.getArray('log').toArray(), b.doc.getArray('log').toArray())

  await waitFor('C to see alice and bob', () => c.seenName(a) === 'alice' && c.seenName(b) === 'bob')
  await waitFor('A and B to see carol', () => a.seenName(c) === 'carol' && b.seenName(c) === 'carol')

  c.text().insert(0, '[carol] ')
  await a.hasText(`[carol] ${text}`)
  await b.hasText(`[carol] ${text}`)
})
