// Chorus's opt-in durable acknowledgement for y-websocket clients: a real WebsocketProvider
// (3.1.0 and 2.1.0) registers a handler for message type 100 and sends `[100, id]` after its
// edits; the answer `[100, id]` means they are in the update log. The server is killed with
// SIGKILL the moment the answer arrives and restarted on the same data dir.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { openClient, openSynced } from './lib/client.mjs'
import { makeDataDir, removeDataDir, startServer } from './lib/server.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

const MESSAGE_DURABLE = 100

/** Registers the handler on `client`'s provider; returns the ids answered so far. */
function listenForAcks (client) {
  const acked = []
  client.provider.messageHandlers[MESSAGE_DURABLE] = (_encoder, decoder) => {
    acked.push(decoding.readVarUint(decoder))
  }
  return acked
}

function askForAck (client, id) {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MESSAGE_DURABLE)
  encoding.writeVarUint(encoder, id)
  client.provider.ws.send(encoding.toUint8Array(encoder))
}

for (const version of ['v3', 'v2']) {
  test(`y-websocket ${version}: the opt-in acknowledgement means stored`, { timeout: 60_000 }, async t => {
    const cleanup = new Cleanup(t)
    const dataDir = makeDataDir()
    cleanup.defer(() => removeDataDir(dataDir))
    const room = `durable-ack-${version}`
    let expected = ''
    for (let round = 1; round <= 3; round++) {
      const server = await startServer({ cleanup, dataDir })
      const [client] = await openSynced(cleanup, server.url, room, ['writer'], { version })
      assert.equal(client.text().toString(), expected, `round ${round}: acknowledged before`)
      const acked = listenForAcks(client)
      client.text().insert(client.text().length, `round ${round}. `)
      expected = client.text().toString()
      askForAck(client, round)
      await waitFor(`ack ${round}`, () => acked.includes(round))
      await server.kill()
      // The next server must not get the edit again from this client.
      client.destroy()
    }
    const server = await startServer({ cleanup, dataDir })
    const reader = openClient(cleanup, server.url, room, { name: 'reader', version })
    await reader.synced()
    assert.equal(reader.text().toString(), expected)
  })
}
