// Version history with real clients (issue #20): two nodes sharing a private Redis, one
// y-websocket client on each with a token naming its user. Versions come on the interval and on
// request, name their authors, and the diff of a version against the live document answers; a
// restore through the other node's API brings both clients (gc on, the default) back to exactly
// the version's content: text with formatting, a map, an array and an XML tree as ProseMirror
// keeps it. A node restarted on its data dir still has the versions and restores them.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as Y from 'yjs'
import { openClient } from './lib/client.mjs'
import { redisState, relayPrefix, startNode } from './lib/cluster.mjs'
import { startRedis } from './lib/redis.mjs'
import { Cleanup, waitFor } from './lib/wait.mjs'

const KEY = 'interop-api-key'
const SECRET = 'an interop secret that is long enough for HS256'
const CONVERGE_TIMEOUT_MS = 20_000

/** `value` with object keys sorted at every level: map key order differs between replicas. */
function sorted (value) {
  if (Array.isArray(value)) return value.map(sorted)
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map(k => [k, sorted(value[k])]))
  }
  return value
}

/** Everything a client shows, in one comparable string. */
function content (doc) {
  return JSON.stringify(sorted({
    t: doc.getText('t').toDelta(),
    m: doc.getMap('m').toJSON(),
    a: doc.getArray('a').toJSON(),
    x: doc.getXmlFragment('x').toString()
  }))
}

async function api (node, method, path, { body, author } = {}) {
  const headers = { authorization: `Bearer ${KEY}` }
  if (author) headers['x-chorus-author'] = author
  if (body !== undefined) headers['content-type'] = 'application/json'
  const response = await fetch(`${node.httpUrl}/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await response.text()
  return { status: response.status, json: text ? JSON.parse(text) : null }
}

async function tokenFor (node, room, sub) {
  const { status, json } = await api(node, 'POST', '/tokens', { body: { doc: room, mode: 'write', sub } })
  assert.equal(status, 200, JSON.stringify(json))
  return json.token
}

function paragraph (text, bold) {
  const p = new Y.XmlElement('paragraph')
  const t = new Y.XmlText()
  t.insert(0, text, bold ? { bold: true } : {})
  p.insert(0, [t])
  return p
}

/** The first content: every type a Yjs editor uses. */
function build (doc) {
  doc.transact(() => {
    const t = doc.getText('t')
    t.insert(0, 'Hello brave new world')
    t.format(6, 5, { bold: true })
    t.format(12, 3, { italic: true, color: '#f00' })
    const m = doc.getMap('m')
    m.set('title', 'Plan')
    m.set('count', 3)
    const nested = new Y.Map()
    nested.set('owner', 'ada')
    m.set('meta', nested)
    doc.getArray('a').insert(0, ['one', 2, { three: 3 }, 'four'])
    const x = doc.getXmlFragment('x')
    const heading = new Y.XmlElement('heading')
    heading.setAttribute('level', '1')
    const ht = new Y.XmlText()
    ht.insert(0, 'Title')
    heading.insert(0, [ht])
    x.insert(0, [heading, paragraph('first paragraph', false), paragraph('second, bold', true)])
  })
}

/** Changes everywhere, from one client. */
function mutate (doc, tag) {
  doc.transact(() => {
    const t = doc.getText('t')
    t.delete(0, 6)
    t.format(0, 5, { bold: null, underline: true })
    t.insert(t.length, ` and ${tag}`)
    const m = doc.getMap('m')
    m.set('title', `Changed by ${tag}`)
    m.delete('count')
    m.set(`new-${tag}`, true)
    m.get('meta')?.set('owner', tag)
    const a = doc.getArray('a')
    a.delete(1, 2)
    a.push([`pushed-${tag}`])
    const x = doc.getXmlFragment('x')
    x.delete(1, 1)
    x.insert(x.length, [paragraph(`added by ${tag}`, false)])
    const first = x.get(0)
    first.setAttribute('level', '2')
  })
}

function converged (clients, expected, what) {
  return waitFor(what, () => clients.every(c => content(c.doc) === expected), {
    timeout: CONVERGE_TIMEOUT_MS,
    describe: () => clients.map(c => `${c.name}: ${content(c.doc)}`).join('\n') + `\nexpected: ${expected}`
  })
}

test('versions, attribution, diff and restore across two nodes', { timeout: 180_000 }, async t => {
  const cleanup = new Cleanup(t)
  const redis = await startRedis({ cleanup })
  const prefix = relayPrefix()
  // One store for both nodes (the test's Redis), so either node reads the versions.
  const args = ['--api-key', KEY, '--auth-secret', SECRET, '--version-interval', '1s', '--store', 'redis']
  const A = await startNode(cleanup, redis, prefix, { name: 'A', args })
  const B = await startNode(cleanup, redis, prefix, { name: 'B', args })
  await redisState([A, B], 'connected')
  const room = 'history-restore'
  const ada = openClient(cleanup, A.url, room, { name: 'ada', params: { token: await tokenFor(A, room, 'ada') } })
  const bob = openClient(cleanup, B.url, room, { name: 'bob', params: { token: await tokenFor(B, room, 'bob') } })
  await Promise.all([ada.synced(), bob.synced()])

  build(ada.doc)
  await converged([ada, bob], content(ada.doc), 'bob to receive the first content')
  bob.doc.getArray('a').push(['from bob'])
  await converged([ada, bob], content(bob.doc), 'ada to receive bob\'s edit')
  const expected = content(ada.doc)

  let versionId
  await t.test('an automatic version comes on the interval', async () => {
    let seen = []
    await waitFor('an automatic version', async () => {
      const { json } = await api(A, 'GET', `/docs/${room}/versions`)
      seen = json.versions
      return seen.some(v => v.kind === 'auto' && v.authors.includes('ada'))
    }, { timeout: CONVERGE_TIMEOUT_MS, describe: () => JSON.stringify(seen) })
  })

  await t.test('a version on request holds the content and names both token subjects', async () => {
    // Each node counts its own clients' edits and stores them shortly after; bob's are B's.
    await waitFor('bob\'s edits in the activity', async () => {
      const { json } = await api(A, 'GET', `/docs/${room}/activity?by=bob`)
      return json.totals.length === 1
    }, { timeout: CONVERGE_TIMEOUT_MS })
    const { status, json } = await api(A, 'POST', `/docs/${room}/versions`, { body: { label: 'V' } })
    assert.equal(status, 201, JSON.stringify(json))
    assert.equal(json.kind, 'requested')
    assert.deepEqual(json.authors, ['ada', 'bob'])
    versionId = json.id
    // Read back through the other node: the JSON content and the binary state agree with
    // what the clients hold.
    const read = await api(B, 'GET', `/docs/${room}/versions/${versionId}`)
    assert.equal(read.status, 200)
    assert.equal(read.json.version.label, 'V')
    const binary = await fetch(`${B.httpUrl}/api/v1/docs/${room}/versions/${versionId}`, {
      headers: { authorization: `Bearer ${KEY}`, accept: 'application/octet-stream' }
    })
    const copy = new Y.Doc()
    Y.applyUpdate(copy, new Uint8Array(await binary.arrayBuffer()))
    assert.equal(content(copy), expected)
  })

  mutate(ada.doc, 'ada')
  mutate(bob.doc, 'bob')
  await waitFor('the edits to converge', () => content(ada.doc) === content(bob.doc), { timeout: CONVERGE_TIMEOUT_MS })
  assert.notEqual(content(ada.doc), expected)

  await t.test('the diff of the version against the live document names changes', async () => {
    const { status, json } = await api(B, 'GET', `/docs/${room}/versions/${versionId}/diff/current`)
    assert.equal(status, 200, JSON.stringify(json))
    assert.ok(JSON.stringify(json).length > 20, JSON.stringify(json))
    const same = await api(B, 'GET', `/docs/${room}/versions/${versionId}/diff/${versionId}`)
    assert.equal(same.status, 200)
    assert.notDeepEqual(same.json, json, 'a version compared with itself differs from a changed one')
  })

  await t.test('a restore through node B brings both clients to exactly the version', async () => {
    const { status, json } = await api(B, 'POST', `/docs/${room}/versions/${versionId}/restore`, { author: 'restorer' })
    assert.equal(status, 200, JSON.stringify(json))
    assert.equal(json.restored_from, versionId)
    assert.equal(json.version.kind, 'restored')
    await converged([ada, bob], expected, 'both clients to show the restored version')
    // The clients keep editing on top of it.
    ada.doc.getText('t').insert(0, '>> ')
    await waitFor('bob to see an edit after the restore', () => bob.doc.getText('t').toString().startsWith('>> '))
  })

  await t.test('activity names every identity that wrote', async () => {
    await waitFor('activity of ada, bob and restorer', async () => {
      const { json } = await api(A, 'GET', `/docs/${room}/activity`)
      const who = json.totals.map(t => t.identity).join()
      return who.includes('ada') && who.includes('bob') && who.includes('restorer')
    }, { timeout: 90_000 })
  })

  await t.test('after a restart, node A still has the versions and restores one', async () => {
    const dataDir = A.dataDir
    assert.deepEqual(await A.stop(), { code: 0, signal: null })
    const A2 = await startNode(cleanup, redis, prefix, { name: 'A2', args, dataDir })
    await redisState([A2, B], 'connected')
    const { json } = await api(A2, 'GET', `/docs/${room}/versions`)
    assert.ok(json.versions.some(v => v.id === versionId), JSON.stringify(json))
    const carol = openClient(cleanup, A2.url, room, { name: 'carol', params: { token: await tokenFor(A2, room, 'carol') } })
    await carol.synced()
    mutate(carol.doc, 'carol')
    await waitFor('bob to see carol', () => content(bob.doc) === content(carol.doc), { timeout: CONVERGE_TIMEOUT_MS })
    const restored = await api(A2, 'POST', `/docs/${room}/versions/${versionId}/restore`)
    assert.equal(restored.status, 200, JSON.stringify(restored.json))
    await converged([carol, bob], expected, 'carol and bob to show the version again')
  })
})
