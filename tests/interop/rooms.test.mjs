// Case 5: documents are separate rooms, and names with `/`, spaces and unicode work.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { openSynced } from './lib/client.mjs'
import { startServer } from './lib/server.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

// `team/notes` is a prefix of the third name: a router that matched on a path segment instead of
// the whole rest of the path would merge them.
const ROOMS = ['room-one', 'team/notes', 'team/notes/2026 plan ü ✓ 日本']

test('documents are separate rooms', { timeout: 60_000 }, async t => {
  const cleanup = new Cleanup(t)
  const server = await startServer({ cleanup })
  const pairs = []
  for (const [i, room] of ROOMS.entries()) {
    pairs.push(await openSynced(cleanup, server.url, room, [`first${i}`, `second${i}`]))
  }
  const everyone = pairs.flat()

  // Two rounds: the second round's edits act as a barrier, because by the time they have arrived
  // any misrouted first-round update would have arrived as well.
  for (const round of [1, 2]) {
    pairs.forEach(([writer], i) => writer.text().insert(writer.text().length, `<${ROOMS[i]} #${round}>`))
    for (const [i, [writer, reader]] of pairs.entries()) {
      await reader.hasText(writer.text().toString())
      const want = Array.from({ length: round }, (_, r) => `<${ROOMS[i]} #${r + 1}>`).join('')
      assert.equal(reader.text().toString(), want)
    }
  }

  await t.test('no edit leaks into another room', () => {
    for (const [i, pair] of pairs.entries()) {
      for (const client of pair) {
        const text = client.text().toString()
        ROOMS.forEach((other, j) => {
          if (j !== i) assert.ok(!text.includes(`<${other} #`), `${client.describe()} holds ${other}'s edit: ${text}`)
        })
      }
    }
  })

  await t.test('awareness stays in its room', async () => {
    for (const [first, second] of pairs) {
      await waitFor(`${first.describe()} to see its room mate`, () => first.seenName(second) === second.name)
    }
    for (const [i, pair] of pairs.entries()) {
      for (const client of pair) {
        const foreign = everyone.filter(c => c.room !== ROOMS[i] && client.awareness.getStates().has(c.id))
        assert.deepEqual(foreign.map(c => c.describe()), [], `${client.describe()} sees clients of other rooms`)
      }
    }
  })
})
