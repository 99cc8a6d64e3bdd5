// Chorus nodes that share rooms through a test's private Redis.

import { randomUUID } from 'node:crypto'
import { startServer } from './server.mjs'
import { waitFor } from './wait.mjs'

/**
 * Relay timings shortened for tests: a dead node is noticed after 2 s (heartbeat every 400 ms)
 * and rooms re-exchange state vectors every 2 s, so repairs happen within a test's patience.
 */
export const NODE_TIMEOUT_MS = 2000
export const RELAY_RESYNC_INTERVAL_MS = 2000

/** A fresh channel prefix; each test has its own Redis anyway, so this only exercises the flag. */
export function relayPrefix () {
  return `interop-${randomUUID()}`
}

/** The `chorus serve` flags that join a node to the relay on `redis`. */
export function relayArgs (redis, prefix) {
  return [
    '--redis-url', redis.url,
    '--redis-prefix', prefix,
    '--node-timeout', `${NODE_TIMEOUT_MS}ms`,
    '--relay-resync-interval', `${RELAY_RESYNC_INTERVAL_MS}ms`
  ]
}

/**
 * Starts one node on the relay. Options are those of `startServer` (`dataDir`, `listen`), plus
 * `name`; pass the same `prefix` to every node of a test.
 */
export function startNode (cleanup, redis, prefix, options = {}) {
  return startServer({ cleanup, ...options, args: [...relayArgs(redis, prefix), ...(options.args ?? [])] })
}

/**
 * Waits until every node's `/readyz` reports `redis: <state>` ('connected' | 'disconnected').
 *
 * Tests wait for 'connected' before their first cross-node edit, so a failure later means the
 * relay lost something, not that a node was still dialling Redis.
 */
export function redisState (nodes, state, options) {
  const seen = new Map()
  return waitFor(`${nodes.map(n => n.describe()).join(', ')} to report redis "${state}" on /readyz`, async () => {
    const answers = await Promise.all(nodes.map(async node => {
      try {
        const { status, body } = await node.readiness()
        seen.set(node, `${status} ${JSON.stringify(body)}`)
        return status === 200 && body?.redis === state
      } catch (err) {
        seen.set(node, err.message)
        return false
      }
    }))
    return answers.every(Boolean)
  }, {
    describe: () => nodes.map(n => `${n.describe()}: ${seen.get(n) ?? 'no answer yet'}`).join('; '),
    ...options
  })
}
