// Free loopback ports for processes that must be told their port up front (redis-server).

import { createServer } from 'node:net'

/**
 * A TCP port on 127.0.0.1 that was free a moment ago.
 *
 * The kernel picks it (port 0), so it comes from the ephemeral range like every other test's
 * port; another process could still take it before the caller binds, which callers handle by
 * retrying with a new port when the bind fails.
 */
export function freePort () {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}
