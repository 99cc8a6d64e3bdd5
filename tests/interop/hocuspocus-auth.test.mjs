// Hocuspocus authentication over the socket: the provider's token is checked like a
// y-websocket `?token=` (signed tokens here), per document; refusals, retries on the same
// socket, expiry and read-only scope.

import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { test } from 'node:test'
import { HocusClient, hocusUrl, openHocus } from './lib/hocuspocus.mjs'
import { startServer } from './lib/server.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

const SECRET = 'hocuspocus-interop-secret-0123456789'

/** A client token as `chorus token` mints it: HS256 over `{ doc, mode, exp }`. */
function token (doc, mode, lifetimeSeconds = 600) {
  const b64 = value => Buffer.from(JSON.stringify(value)).toString('base64url')
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ doc, mode, exp: Math.floor(Date.now() / 1000) + lifetimeSeconds })}`
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`
}

for (const version of ['v4', 'v3']) {
  test(`hocuspocus ${version} tokens`, { timeout: 90_000 }, async t => {
    const cleanup = new Cleanup(t)
    const server = await startServer({ cleanup, args: ['--auth-secret', SECRET] })
    const url = hocusUrl(server)
    const room = name => `auth-${version}-${name}`

    await t.test('a missing or wrong token is refused, and a retry on the same socket passes', async () => {
      const name = room('retry')
      const { socket, clients: [client] } = openHocus(cleanup, url, [name], { version, token: token('another-doc', 'write') })
      await waitFor('the refusal', () => client.denied.length > 0)
      assert.match(client.denied[0], /does not grant access/)
      assert.equal(client.provider.isAuthenticated, false)
      client.text().insert(0, 'unauthenticated edit')

      client.provider.configuration.token = token(name, 'write')
      await client.provider.sendToken()
      // The refusal dropped what waited with the first token, the sync step 1 among it.
      client.provider.startSync()
      await client.synced()
      assert.deepEqual(client.authenticated, ['read-write'])
      assert.deepEqual(socket.closes, [], 'the refusal did not close the socket')
      // The edit made before it was let in waited in the queue and went in with the grant.
      const { clients: [reader] } = openHocus(cleanup, url, [name], { version, token: token(name, 'read') })
      await reader.synced()
      await reader.hasText('unauthenticated edit')
    })

    await t.test('each document on a socket has its own grant', async () => {
      const [open, closed] = [room('granted'), room('not-granted')]
      const { socket } = openHocus(cleanup, url, [], { version })
      const granted = new HocusClient(socket, open, { token: token(open, 'write') })
      const refused = new HocusClient(socket, closed, { token: token(open, 'write') })
      cleanup.defer(() => { granted.destroy(); refused.destroy() })
      await granted.synced()
      await waitFor('the second document to be refused', () => refused.denied.length > 0)
      granted.text().insert(0, 'fine')
      await granted.acknowledged()
    })

    await t.test('a read-only token gets scope readonly and its edits are refused', async () => {
      const name = room('read-only')
      const { clients: [writer] } = openHocus(cleanup, url, [name], { version, token: token(name, 'write') })
      const { clients: [reader] } = openHocus(cleanup, url, [name], { version, token: token(name, 'read') })
      await Promise.all([writer.synced(), reader.synced()])
      assert.deepEqual(reader.authenticated, ['readonly'])
      assert.equal(reader.provider.authorizedScope, 'readonly')
      // Its step 2 adds nothing (an empty document), so it is acknowledged as Hocuspocus does.
      await reader.acknowledged()

      reader.text().insert(0, 'not allowed')
      // The server takes a socket's frames in order: once the stateless message that follows
      // the edit has reached the writer, the server has had the edit (and refused it).
      reader.provider.sendStateless('edited')
      await waitFor('the writer to hear from the reader', () => writer.stateless.includes('edited'))
      writer.text().insert(0, 'granted')
      await writer.acknowledged()
      const { clients: [fresh] } = openHocus(cleanup, url, [name], { version, token: token(name, 'read') })
      await fresh.synced()
      assert.equal(fresh.text().toString(), 'granted')
      assert.equal(writer.text().toString(), 'granted')
      await waitFor('the reader to get the writer\'s edit', () => reader.text().toString().includes('granted'))
      assert.ok(reader.provider.unsyncedChanges > 0, 'the refused edit is never acknowledged')
    })

    await t.test('an expired token closes that document only', async () => {
      const [short, long] = [room('short'), room('long')]
      const { socket } = openHocus(cleanup, url, [], { version })
      const expiring = new HocusClient(socket, short, { token: token(short, 'write', 2) })
      const lasting = new HocusClient(socket, long, { token: token(long, 'write') })
      cleanup.defer(() => { expiring.destroy(); lasting.destroy() })
      await Promise.all([expiring.synced(), lasting.synced()])
      await waitFor('the expiring document to be closed', () => expiring.closed.length > 0, { timeout: 15_000 })
      assert.match(expiring.closed[0].reason, /^4403 token expired/)
      lasting.text().insert(0, 'still here')
      await lasting.acknowledged()
      assert.deepEqual(socket.closes, [], 'the socket stayed open')
    })
  })
}
