import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  MAX_NAME_LENGTH, PALETTE, baseColor, cleanName, colorClash, guardRemoteUsers, loadIdentity, nudge, sanitizeUser
} from '../src/identity.js'

/** A Storage stand-in backed by a Map (node has no localStorage). */
function memoryStorage () {
  const map = new Map()
  return /** @type {Storage} */ (/** @type {unknown} */ ({
    getItem: (/** @type {string} */ k) => map.get(k) ?? null,
    setItem: (/** @type {string} */ k, /** @type {string} */ v) => { map.set(k, String(v)) },
    removeItem: (/** @type {string} */ k) => { map.delete(k) }
  }))
}

const throwingStorage = /** @type {Storage} */ (/** @type {unknown} */ ({
  getItem () { throw new Error('denied') },
  setItem () { throw new Error('denied') },
  removeItem () { throw new Error('denied') }
}))

test('palette colours stay distinct after the rename nudge', () => {
  assert.equal(new Set(PALETTE.map(baseColor)).size, PALETTE.length)
})

test('a rename changes the colour string but not the colour anyone could see', () => {
  const identity = loadIdentity({ local: memoryStorage(), session: memoryStorage() })
  const before = identity.user()
  const after = identity.rename('Ada')
  assert.equal(after.name, 'Ada')
  assert.notEqual(after.color, before.color)
  assert.equal(baseColor(after.color), baseColor(before.color))
  const channels = (/** @type {string} */ c) => [1, 3, 5].map(i => Number.parseInt(c.slice(i, i + 2), 16))
  channels(after.color).forEach((v, i) => assert.ok(Math.abs(v - channels(before.color)[i]) <= 3))
  assert.equal(nudge('#123456', 5), '#123455')
})

test('a chosen name is remembered across tabs; the random name and colour are per tab', () => {
  const local = memoryStorage()
  const first = loadIdentity({ local, session: memoryStorage() })
  assert.equal(first.chosenName(), '')
  first.rename('  Grace Hopper  ')
  const second = loadIdentity({ local, session: memoryStorage() })
  assert.equal(second.user().name, 'Grace Hopper')
  assert.equal(second.chosenName(), 'Grace Hopper')
  assert.equal(second.rename('').name, second.tabName, 'clearing the name falls back to the random one')
  assert.equal(loadIdentity({ local, session: memoryStorage() }).chosenName(), '')
})

test('a reload of the same tab keeps its random name and colour', () => {
  const session = memoryStorage()
  const first = loadIdentity({ local: memoryStorage(), session })
  const again = loadIdentity({ local: memoryStorage(), session })
  assert.deepEqual(again.user(), first.user())
})

test('works when storage throws', () => {
  const identity = loadIdentity({ local: throwingStorage, session: throwingStorage })
  assert.ok(identity.user().name.length > 0)
  assert.equal(identity.rename('Linus').name, 'Linus')
})

test("sanitizes a peer's user field before it reaches the DOM or CSS", () => {
  assert.deepEqual(sanitizeUser({ name: 'Ada', color: '#AbCdEf' }), { name: 'Ada', color: '#AbCdEf', colorLight: '#AbCdEf33' })
  assert.equal(sanitizeUser({ name: 'x', color: 'red; background: url(//evil)' }).color, '#64748b')
  assert.equal(sanitizeUser(null).name, 'Anonymous')
  assert.equal(sanitizeUser({ name: 42 }).name, 'Anonymous')
  assert.equal(sanitizeUser({ name: '\u0000\n ' }).name, 'Anonymous')
  assert.equal(cleanName('x'.repeat(100)).length, MAX_NAME_LENGTH)
})

test('of two tabs sharing a colour, only the one with the higher client id moves', () => {
  const red = PALETTE[0]
  const states = new Map([
    [1, { user: { name: 'A', color: red } }],
    [2, { user: { name: 'B', color: nudge(red, 2) } }],
    [3, { user: { name: 'C', color: PALETTE[1] } }]
  ])
  assert.equal(colorClash(states, 1), null)
  assert.deepEqual(colorClash(states, 2), new Set([baseColor(red), baseColor(PALETTE[1])]))
  assert.equal(colorClash(states, 3), null)

  const identity = loadIdentity({ local: memoryStorage(), session: memoryStorage() })
  const taken = new Set(PALETTE.slice(1).map(baseColor))
  assert.equal(baseColor(identity.recolor(taken).color), baseColor(PALETTE[0]), 'moves to the one free colour')
})

test("peers' user fields are sanitized in place as they arrive, ours is left alone", async () => {
  const Y = await import('yjs')
  const { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate } = await import('y-protocols/awareness')
  const ours = new Awareness(new Y.Doc())
  const theirs = new Awareness(new Y.Doc())
  guardRemoteUsers(ours)
  ours.setLocalStateField('user', { name: 'Me', color: '#16a34a' })
  theirs.setLocalStateField('user', { name: 'Mallory', color: 'red; background-image: url(https://tracker.invalid/)' })
  theirs.setLocalStateField('cursor', null)
  // The real wire format: an encoded awareness update, applied as y-websocket does.
  applyAwarenessUpdate(ours, encodeAwarenessUpdate(theirs, [theirs.clientID]), 'server')
  assert.deepEqual(ours.getStates().get(theirs.clientID)?.user, { name: 'Mallory', color: '#64748b', colorLight: '#64748b33' })
  assert.deepEqual(ours.getLocalState()?.user, { name: 'Me', color: '#16a34a' })
  ours.destroy()
  theirs.destroy()
})
