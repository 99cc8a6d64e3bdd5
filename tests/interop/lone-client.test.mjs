// Case 6: a client alone in a room stays connected and synced past the client's 30 s watchdog.
//
// y-websocket v2/v3 close the socket when no message arrived for 30 s. A lone client only
// receives messages because the server echoes its awareness renewals (every 15 s) back to it.
// This file takes ~46 s, so the suite runs test files concurrently (see package.json).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { setTimeout as delay } from 'node:timers/promises'
import { openClient } from './lib/client.mjs'
import { startServer } from './lib/server.mjs'
import { Cleanup } from './lib/wait.mjs'

/** Past the 30 s watchdog plus its 3 s check period, with two awareness renewals inside. */
const OBSERVE_MS = 46_000

const CHECK_EVERY_MS = 250

// Both versions observe the same window side by side, so the file takes one window, not two.
describe('lone client', { concurrency: true }, () => {
  for (const version of ['v3', 'v2']) {
    it(`a lone ${version} client stays connected and synced for ${OBSERVE_MS / 1000} s`, { timeout: OBSERVE_MS + 30_000 }, async t => {
      const cleanup = new Cleanup(t)
      const server = await startServer({ cleanup })
      const client = openClient(cleanup, server.url, `lone-${version}`, { name: 'solo', version })
      await client.synced()
      client.text().insert(0, 'alone')

      // This loop observes for a fixed window on purpose: the property under test is that
      // nothing happens during it. It stops early on the first sign of a drop.
      const end = Date.now() + OBSERVE_MS
      while (Date.now() < end) {
        assert.deepEqual(client.statuses.filter(s => s !== 'connecting' && s !== 'connected'), [],
          `the provider dropped its connection (statuses ${JSON.stringify(client.statuses)}, closes ${JSON.stringify(client.closes)})`)
        assert.ok(client.provider.synced, 'the provider lost its synced state')
        await delay(CHECK_EVERY_MS)
      }
      // 'connecting' is emitted inside the provider's constructor, before our listener exists.
      assert.deepEqual(client.statuses, ['connected'])
      assert.deepEqual(client.closes, [])
      assert.ok(client.provider.wsconnected)
    })
  }
})
