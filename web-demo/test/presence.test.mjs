import { test } from 'node:test'
import assert from 'node:assert/strict'
import { initials, presenceEntries } from '../src/presence.js'

test('initials take the first letter of up to two words, whole graphemes', () => {
  assert.equal(initials('Ada Lovelace'), 'AL')
  assert.equal(initials('grace brewster hopper'), 'GB')
  assert.equal(initials('Ünal'), 'Ü')
  assert.equal(initials('🦊 Fox'), '🦊F')
  assert.equal(initials(''), '?')
})

test('lists you first, then everyone else by name, including peers without a user field', () => {
  const states = new Map([
    [7, { user: { name: 'Zoe', color: '#2563eb' } }],
    [3, { user: { name: 'Bob', color: 'not a colour' } }],
    [9, { cursor: null }],
    [5, { user: { name: 'Me', color: '#16a34a' } }]
  ])
  const entries = presenceEntries(/** @type {any} */ (states), 5)
  assert.deepEqual(entries.map(e => [e.name, e.isSelf]), [['Me', true], ['Anonymous', false], ['Bob', false], ['Zoe', false]])
  assert.equal(entries[2].color, '#64748b', 'an invalid colour is replaced')
})
