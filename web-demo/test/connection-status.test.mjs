import { test } from 'node:test'
import assert from 'node:assert/strict'
import { describeStatus } from '../src/connection-status.js'

const base = { synced: false, everSynced: false, wantsConnection: true, closedByServer: false, browserOnline: true, pendingEdits: false }
const state = (/** @type {Partial<typeof base>} */ facts) => describeStatus({ ...base, ...facts }).state

test('first connection, then connected', () => {
  assert.equal(state({}), 'connecting')
  assert.equal(state({ synced: true, everSynced: true }), 'connected')
})

test('a lost connection is "reconnecting" until an edit is made, then edits are pending', () => {
  assert.equal(state({ everSynced: true }), 'reconnecting')
  assert.equal(state({ everSynced: true, pendingEdits: true }), 'pending')
  assert.equal(state({ pendingEdits: true }), 'pending', 'edits made before the first connect are pending too')
})

test('offline by choice or by the browser', () => {
  assert.equal(state({ everSynced: true, wantsConnection: false }), 'offline')
  assert.equal(state({ everSynced: true, browserOnline: false }), 'offline')
  assert.equal(state({ wantsConnection: false, pendingEdits: true }), 'pending')
})

test('a permanent close by the server says so, even with pending edits', () => {
  assert.equal(state({ everSynced: true, closedByServer: true, wantsConnection: false }), 'closed')
  assert.equal(state({ closedByServer: true, pendingEdits: true }), 'closed')
})

test('every state has a label and an explanation', () => {
  for (const facts of [{}, { synced: true }, { everSynced: true }, { pendingEdits: true }, { wantsConnection: false }, { closedByServer: true }]) {
    const status = describeStatus({ ...base, ...facts })
    assert.ok(status.label.length > 0 && status.detail.length > 0, JSON.stringify(status))
  }
})
