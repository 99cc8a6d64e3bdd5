// Hocuspocus clients (`@hocuspocus/provider` 4.x and 3.x) on `/hocuspocus`: convergence, a late
// joiner, awareness, two documents on one socket, and rooms shared with y-websocket clients.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { openSynced } from './lib/client.mjs'
import { HocusClient, hocusUrl, openHocus } from './lib/hocuspocus.mjs'
import { startServer } from './lib/server.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

for (const version of ['v4', 'v3']) {
  test(`@hocuspocus/provider ${version} against /hocuspocus`, { timeout: 90_000 }, async t => {
    const cleanup = new Cleanup(t)
    const server = await startServer({ cleanup })
    const url = hocusUrl(server)
    const room = name => `hocus-${version}-${name}`

    await t.test('two clients converge, and each edit is acknowledged', async () => {
      const { clients: [a] } = openHocus(cleanup, url, [room('converge')], { version, user: 'alice' })
      const { clients: [b] } = openHocus(cleanup, url, [room('converge')], { version, user: 'bob' })
      await Promise.all([a.synced(), b.synced()])
      assert.deepEqual(a.authenticated, ['read-write'])
      a.text().insert(0, 'hello ')
      b.text().insert(0, 'world ')
      await Promise.all([a.acknowledged(), b.acknowledged()])
      await waitFor('both to hold the same two words', () =>
        a.text().toString() === b.text().toString() && a.text().length === 12,
      { describe: () => `${JSON.stringify(a.text().toString())} / ${JSON.stringify(b.text().toString())}` })
    })

    await t.test('a late joiner gets the whole document', async () => {
      const { clients: [writer] } = openHocus(cleanup, url, [room('late')], { version })
      await writer.synced()
      for (let i = 0; i < 20; i++) writer.text().insert(writer.text().length, `line ${i}\n`)
      writer.doc.getMap('meta').set('title', 'late')
      await writer.acknowledged()
      const { clients: [late] } = openHocus(cleanup, url, [room('late')], { version })
      await late.synced()
      assert.equal(late.text().toString(), writer.text().toString())
      assert.equal(late.doc.getMap('meta').get('title'), 'late')
    })

    await t.test('awareness travels both ways and goes with the client', async () => {
      const { clients: [a] } = openHocus(cleanup, url, [room('awareness')], { version, user: 'alice' })
      const { clients: [b] } = openHocus(cleanup, url, [room('awareness')], { version, user: 'bob' })
      await Promise.all([a.synced(), b.synced()])
      await waitFor('bob to see alice', () => b.seenName(a) === 'alice')
      await waitFor('alice to see bob', () => a.seenName(b) === 'bob')
      a.provider.setAwarenessField('cursor', { anchor: 1, head: 4 })
      await waitFor('bob to see alice\'s cursor', () => b.provider.awareness.getStates().get(a.id)?.cursor?.head === 4)
      a.destroy()
      await waitFor('bob to see alice leave', () => !b.provider.awareness.getStates().has(a.id))
    })

    await t.test('two documents share one socket; closing one leaves the other', async () => {
      const names = [room('multi-a'), room('multi-b')]
      const { socket, clients: [one, two] } = openHocus(cleanup, url, names, { version, user: 'writer' })
      await Promise.all([one.synced(), two.synced()])
      const { clients: [oneWatcher, twoWatcher] } = openHocus(cleanup, url, names, { version })
      await Promise.all([oneWatcher.synced(), twoWatcher.synced()])
      one.text().insert(0, 'first document')
      two.text().insert(0, 'second document')
      await oneWatcher.hasText('first document')
      await twoWatcher.hasText('second document')
      assert.equal(oneWatcher.text().toString(), 'first document', 'no cross-talk')

      // detach() sends a close message for its document and leaves the socket open; unlike
      // destroy() it sends no awareness removal, so only the server ending that document's
      // session can take its presence away from the watcher.
      await waitFor('the watcher to see the first document\'s writer', () => oneWatcher.seenName(one) === 'writer')
      one.provider.detach()
      await waitFor('the first document\'s session to end on the server', () => !oneWatcher.provider.awareness.getStates().has(one.id))
      two.text().insert(two.text().length, ', still open')
      await twoWatcher.hasText('second document, still open')
      await two.acknowledged()
      assert.deepEqual(socket.closes, [], 'the shared socket stayed open')
    })

    if (version === 'v4') {
      await t.test('with session awareness, one socket carries the same document twice', async () => {
        const { socket } = openHocus(cleanup, url, [], { version })
        const [first, second] = ['first', 'second'].map(user => {
          const client = new HocusClient(socket, room('sessions'), { user, sessionAwareness: true })
          cleanup.defer(() => client.destroy())
          return client
        })
        await Promise.all([first.synced(), second.synced()])
        first.text().insert(0, 'one socket, ')
        await second.hasText('one socket, ')
        second.text().insert(second.text().length, 'two sessions')
        await first.hasText('one socket, two sessions')
        await Promise.all([first.acknowledged(), second.acknowledged()])
        await waitFor('each to see the other', () => first.seenName(second) === 'second' && second.seenName(first) === 'first')
      })
    }

    await t.test('y-websocket and Hocuspocus clients share a room', async () => {
      const name = room('mixed')
      const [ywriter] = await openSynced(cleanup, server.url, name, ['carol'])
      const { clients: [h] } = openHocus(cleanup, url, [name], { version, user: 'dave' })
      await h.synced()
      ywriter.text().insert(0, 'from y-websocket. ')
      await h.hasText('from y-websocket. ')
      h.text().insert(h.text().length, 'from hocuspocus.')
      await ywriter.hasText('from y-websocket. from hocuspocus.')
      await waitFor('the hocuspocus client to see carol', () => h.seenName(ywriter) === 'carol')
      await waitFor('the y-websocket client to see dave', () => ywriter.seenName(h) === 'dave')
    })

    await t.test('a document attached later to an open socket syncs on its own', async () => {
      const { socket, clients: [a] } = openHocus(cleanup, url, [room('independent')], { version })
      await a.synced()
      const extra = new HocusClient(socket, room('independent-2'), {})
      cleanup.defer(() => extra.destroy())
      await extra.synced()
      extra.text().insert(0, 'x')
      await extra.acknowledged()
      assert.equal(a.text().toString(), '')
    })
  })
}
