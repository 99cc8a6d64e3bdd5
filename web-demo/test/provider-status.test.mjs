import { test } from 'node:test'
import assert from 'node:assert/strict'
import { describeSave } from '../src/tiptap/provider-status.js'

const state = (/** @type {Parameters<typeof describeSave>[0]} */ facts) => describeSave(facts).state

test('nothing is claimed before the document has loaded', () => {
  assert.equal(state({ loaded: false, connected: false, unsyncedChanges: 0 }), 'loading')
  assert.equal(state({ loaded: false, connected: true, unsyncedChanges: 1 }), 'loading')
})

test('"Saved" only when the server has acknowledged every update', () => {
  assert.equal(state({ loaded: true, connected: true, unsyncedChanges: 0 }), 'saved')
  assert.equal(state({ loaded: true, connected: true, unsyncedChanges: 1 }), 'saving')
  assert.equal(state({ loaded: true, connected: true, unsyncedChanges: 7 }), 'saving')
})

test('unacknowledged edits without a connection are "Not saved", acknowledged ones stay saved', () => {
  assert.equal(state({ loaded: true, connected: false, unsyncedChanges: 2 }), 'unsaved')
  assert.equal(state({ loaded: true, connected: false, unsyncedChanges: 0 }), 'saved')
})

test('every save state has a label and an explanation', () => {
  for (const facts of [
    { loaded: false, connected: false, unsyncedChanges: 0 },
    { loaded: true, connected: true, unsyncedChanges: 0 },
    { loaded: true, connected: true, unsyncedChanges: 1 },
    { loaded: true, connected: false, unsyncedChanges: 1 }
  ]) {
    const save = describeSave(facts)
    assert.ok(save.label.length > 0 && save.detail.length > 0, JSON.stringify(save))
  }
})
