// Honest traffic (issue #15): many real y-websocket clients per room doing what editors do
// (emoji, formatting, embeds, large pastes, ProseMirror-like trees, nested maps and arrays,
// deletes under other clients' typing, undo/redo, going offline and typing as the socket
// reopens, gc-off docs, moving between nodes, a node restarted mid-session). Each case is one
// seed of honest/session.mjs; it passes only if no honest client is refused (no close code
// other than 1000/1001/1005/1006), every client and a late joiner on every node end with the
// same document, and every node's GET /api/v1/docs/<doc>/update is that document. The cases with
// `restores` also make and restore versions through the HTTP API while the clients edit.
//
// A failure prints the seed and every refusal; replay one with
// `node tests/interop/honest/run.mjs --seeds <seed> --nodes <n> --rooms <r> --steps <s>`.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { runSession } from './honest/session.mjs'

/** Small enough for a 2-core CI machine; long runs use honest/run.mjs. */
const CASES = [
  { seed: 1, nodes: 1, rooms: 2, clients: 5, steps: 250 },
  { seed: 2, nodes: 1, rooms: 2, clients: 5, steps: 250 },
  { seed: 3, nodes: 1, rooms: 2, clients: 6, steps: 250 },
  { seed: 4, nodes: 2, rooms: 2, clients: 5, steps: 250 },
  { seed: 5, nodes: 2, rooms: 2, clients: 4, steps: 250 },
  // Room 3 of these seeds once left one client a remote edit behind: a reconnecting client's
  // step 2 released another node's waiting update, which the room then kept from that client.
  { seed: 7066, nodes: 2, rooms: 5, clients: 5, steps: 160 },
  { seed: 7083, nodes: 2, rooms: 5, clients: 5, steps: 160 },
  // Documents being restored (issue #20): versions made and restored through either node's API
  // while the clients edit, then one restore with no edit in flight that must leave exactly the
  // version's content.
  { seed: 8, nodes: 1, rooms: 2, clients: 5, steps: 250, restores: 10 },
  { seed: 9, nodes: 2, rooms: 3, clients: 5, steps: 200, restores: 10 }
]

for (const { seed, ...opts } of CASES) {
  test(`honest traffic, seed ${seed}, ${opts.nodes} node(s)${opts.restores ? ', restores' : ''}: no refusal, one document everywhere`, { timeout: 120_000 }, async t => {
    const result = await runSession(seed, { convergeTimeoutMs: 20_000, log: msg => t.diagnostic(msg), ...opts })
    t.diagnostic(`seed ${seed}: ${result.ms} ms, ${result.closes.length} ordinary closes, ${result.refusals.length} refusals`)
    const replay = `node tests/interop/honest/run.mjs --seeds ${seed} --nodes ${opts.nodes} --rooms ${opts.rooms} --clients ${opts.clients} --steps ${opts.steps}` +
      (opts.restores ? ` --restores ${opts.restores}` : '')
    assert.ok(result.ok, `honest-traffic seed ${seed} (${opts.nodes} node(s)) failed; replay with \`${replay}\`:\n  ${result.problems.join('\n  ')}`)
  })
}
