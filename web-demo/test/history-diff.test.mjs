import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { diffSegments, joinLines, textOfNode, treeLines, versionTitle } from '../src/history-diff.js'

describe('textOfNode', () => {
  it('joins the runs of a delta, embeds as one object character', () => {
    assert.equal(textOfNode({ kind: 'text', delta: [{ insert: 'ab' }, { insert: { embed: {} } }, { insert: 'c', attributes: { bold: true } }] }), 'ab\uFFFCc')
  })
  it('reads a missing root as empty text', () => {
    assert.equal(textOfNode(undefined), '')
  })
})

describe('diffSegments', () => {
  it('shows an unchanged text as it is', () => {
    assert.deepEqual(diffSegments('same', undefined), [{ kind: 'same', text: 'same' }])
  })

  it('lays insertions and deletions over the old text at their old positions', () => {
    // "Hello world" → "Hello brave world!" with "world" kept, then "Hello" deleted.
    const change = {
      change: 'edited',
      kind: 'text',
      text: [
        { op: 'delete', pos_a: 0, pos_b: 0, text: 'Hello', len: 5 },
        { op: 'insert', pos_a: 6, pos_b: 1, text: 'brave ', len: 6 },
        { op: 'format', pos_a: 6, pos_b: 7, len: 5, attributes: { bold: true } },
        { op: 'insert', pos_a: 11, pos_b: 12, text: '!', len: 1 }
      ]
    }
    assert.deepEqual(diffSegments('Hello world', change), [
      { kind: 'del', text: 'Hello' },
      { kind: 'same', text: ' ' },
      { kind: 'ins', text: 'brave ' },
      { kind: 'same', text: 'world' },
      { kind: 'ins', text: '!' }
    ])
  })

  it('counts positions in UTF-16 code units, as the server does', () => {
    const change = { change: 'edited', kind: 'text', text: [{ op: 'insert', pos_a: 2, pos_b: 2, text: 'x', len: 1 }] }
    assert.deepEqual(diffSegments('😀y', change), [
      { kind: 'same', text: '😀' }, { kind: 'ins', text: 'x' }, { kind: 'same', text: 'y' }
    ])
  })

  it('shows a root that appeared as inserted, one that emptied as deleted', () => {
    assert.deepEqual(diffSegments('', { change: 'added', value: { kind: 'text', delta: [{ insert: 'new' }] } }),
      [{ kind: 'ins', text: 'new' }])
    assert.deepEqual(diffSegments('old', { change: 'removed', value: { kind: 'text', delta: [{ insert: 'old' }] } }),
      [{ kind: 'del', text: 'old' }])
  })

  it('never reads outside the old text, whatever positions arrive', () => {
    const change = { change: 'edited', kind: 'text', text: [{ op: 'delete', pos_a: 99, len: 5 }, { op: 'insert', pos_a: -3, text: 'z' }] }
    assert.deepEqual(diffSegments('ab', change), [{ kind: 'same', text: 'ab' }, { kind: 'ins', text: 'z' }])
  })
})

describe('versionTitle', () => {
  it('prefers the label, else says why the version exists', () => {
    assert.equal(versionTitle({ kind: 'requested', label: 'Draft 1' }), 'Draft 1')
    assert.equal(versionTitle({ kind: 'auto' }), 'Saved automatically')
    assert.equal(versionTitle({ kind: 'restored', restored_from: 'x' }), 'After a restore')
  })
})

describe('treeLines and joinLines (Tiptap documents)', () => {
  const text = (/** @type {string} */ s) => ({ kind: 'xml_text', delta: [{ insert: s }], attributes: {} })
  const paragraph = (/** @type {string} */ s) => ({ kind: 'xml_element', tag: 'paragraph', attributes: {}, children: [text(s)] })
  const fragment = { kind: 'xml_fragment', children: [paragraph('Agenda'), paragraph('Budget review')] }

  it('shows one line per block, containers only through their blocks', () => {
    const list = { kind: 'xml_element', tag: 'bulletList', attributes: {}, children: [{ kind: 'xml_element', tag: 'listItem', attributes: {}, children: [paragraph('item')] }] }
    const lines = treeLines({ kind: 'xml_fragment', children: [paragraph('a'), list] }, undefined)
    assert.deepEqual(joinLines(lines), [{ kind: 'same', text: 'a\nitem' }])
  })

  it('marks text edited inside a block, and blocks added or removed whole, newline included', () => {
    const change = {
      change: 'edited',
      kind: 'xml_fragment',
      elements: [
        { op: 'delete', index_a: 0, index_b: 0, values: [paragraph('Agenda')] },
        {
          op: 'edit',
          index_a: 1,
          index_b: 0,
          edits: { kind: 'xml_element', tag: 'paragraph', elements: [{ op: 'edit', index_a: 0, index_b: 0, edits: { kind: 'xml_text', text: [{ op: 'insert', pos_a: 13, pos_b: 13, text: ' and vote', len: 9 }] } }] }
        },
        { op: 'insert', index_a: 2, index_b: 1, values: [paragraph('Next steps')] }
      ]
    }
    assert.deepEqual(joinLines(treeLines(fragment, change)), [
      { kind: 'del', text: 'Agenda' },
      { kind: 'same', text: '\nBudget review' },
      { kind: 'ins', text: ' and vote\nNext steps' }
    ])
  })

  it('shows a whole tree added to an empty document as inserted', () => {
    assert.deepEqual(joinLines(treeLines(undefined, { change: 'added', value: fragment })),
      [{ kind: 'ins', text: 'Agenda\nBudget review' }])
  })
})
