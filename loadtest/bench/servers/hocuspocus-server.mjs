// A plain @hocuspocus/server 4.x for the bench: in memory (no extensions, no persistence),
// no authentication hook (any token is accepted), on 127.0.0.1:$PORT. The bench installs the
// package next to a copy of this script and runs `node hocuspocus-server.mjs`.
//
// Its SyncStatus(1) follows the in-memory apply (Hocuspocus's own storage, when configured,
// runs on a debounce), so an ack latency measured against it is not a durable one.
import { Server } from '@hocuspocus/server'

const port = Number(process.env.PORT)
if (!Number.isInteger(port) || port <= 0) {
  console.error('set PORT to the port to listen on')
  process.exit(2)
}

const server = new Server({
  port,
  address: '127.0.0.1',
  quiet: true,
  // SIGTERM/SIGINT stop the server (the bench stops servers with SIGTERM).
  stopOnSignals: true
})
await server.listen()
console.log(JSON.stringify({ message: 'listening', port }))
