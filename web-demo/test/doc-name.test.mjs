import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  MAX_DOC_NAME_BYTES, docHref, docNameFromSearch, randomDocName, roomPath, sameOriginServerUrl
} from '../src/doc-name.js'

test('reads the document name from ?doc=', () => {
  assert.equal(docNameFromSearch('?doc=team%2Fnotes'), 'team/notes')
  assert.equal(docNameFromSearch('?x=1&doc=plan+2026'), 'plan 2026')
  assert.equal(docNameFromSearch('?doc=%20padded%20'), 'padded')
})

test('treats names the server would refuse as missing', () => {
  assert.equal(docNameFromSearch(''), null)
  assert.equal(docNameFromSearch('?doc='), null)
  assert.equal(docNameFromSearch('?doc=%20%20'), null)
  assert.equal(docNameFromSearch('?doc=a%0Ab'), null)
  assert.equal(docNameFromSearch(`?doc=${'é'.repeat(MAX_DOC_NAME_BYTES / 2)}`), 'é'.repeat(MAX_DOC_NAME_BYTES / 2))
  assert.equal(docNameFromSearch(`?doc=${'é'.repeat(MAX_DOC_NAME_BYTES / 2 + 1)}`), null, 'limit is in bytes, not characters')
})

test('a generated name round-trips through the link that opens it', () => {
  let seed = 0.1
  const random = () => (seed = (seed * 9301 + 0.49297) % 1)
  for (let i = 0; i < 50; i++) {
    const name = randomDocName(random)
    assert.match(name, /^[a-z]+-[a-z]+-\d{4}$/)
    assert.equal(docNameFromSearch(docHref(name)), name)
  }
  assert.equal(docNameFromSearch(docHref('a b/c?d#e&f')), 'a b/c?d#e&f')
})

test('encodes the room path so the URL keeps its shape, slashes included', () => {
  assert.equal(roomPath('team/launch plan?#'), 'team/launch%20plan%3F%23')
  assert.equal(roomPath('ü'), '%C3%BC')
})

test('connects to /ws (or /hocuspocus) on the host that served the page', () => {
  assert.equal(sameOriginServerUrl({ protocol: 'http:', host: '127.0.0.1:1234' }), 'ws://127.0.0.1:1234/ws')
  assert.equal(sameOriginServerUrl({ protocol: 'https:', host: 'chorus.example' }), 'wss://chorus.example/ws')
  assert.equal(sameOriginServerUrl({ protocol: 'https:', host: 'chorus.example' }, '/hocuspocus'), 'wss://chorus.example/hocuspocus')
})
