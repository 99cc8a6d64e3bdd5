// Real Yjs on both ends of a restore, driven by crates/chorus-history/tests/it/yjs.rs (not a
// `node --test` file: the Rust test runs it, since the restore is computed in Rust).
//
//   node yjs-restore.mjs make  <out.json>   versions and current states edited with Yjs (gc on)
//   node yjs-restore.mjs check <in.json>    applies each restore update to a Yjs doc holding the
//                                           current state and compares with the version's content;
//                                           a second Yjs doc edits concurrently and must converge
//
// `check` prints {"results": [...]} and exits 1 if any case fails.
import * as Y from 'yjs'
import { readFileSync, writeFileSync } from 'node:fs'

const hex = (u8) => Buffer.from(u8).toString('hex')
const unhex = (h) => new Uint8Array(Buffer.from(h, 'hex'))

// A seeded generator (mulberry32), so the random scenario is the same on every run.
function rng (seed) {
  return () => {
    seed |= 0; seed = seed + 0x6D2B79F5 | 0
    let t = Math.imul(seed ^ seed >>> 15, 1 | seed)
    t = t + Math.imul(t ^ t >>> 7, 61 | t) ^ t
    return ((t ^ t >>> 14) >>> 0) / 4294967296
  }
}

function paragraph (text, marks) {
  const p = new Y.XmlElement('paragraph')
  const t = new Y.XmlText()
  p.insert(0, [t])
  t.insert(0, text, marks)
  return p
}

function scenarios () {
  const out = []

  // Tiptap / y-prosemirror: a `prosemirror` fragment of headings, paragraphs and lists.
  {
    const doc = new Y.Doc()
    const frag = doc.getXmlFragment('prosemirror')
    const h = new Y.XmlElement('heading')
    h.setAttribute('level', 1)
    h.insert(0, [new Y.XmlText('Release notes')])
    const list = new Y.XmlElement('bulletList')
    frag.insert(0, [h, paragraph('Hello world, again'), list, paragraph('Bye.')])
    for (const item of ['fast', 'small', 'honest']) {
      const li = new Y.XmlElement('listItem')
      list.push([li])
      li.insert(0, [paragraph(item)])
    }
    frag.get(1).get(0).format(6, 5, { bold: {} })
    const version = Y.encodeStateAsUpdate(doc)
    doc.transact(() => {
      frag.get(0).setAttribute('level', 2)
      frag.get(0).get(0).insert(13, ' (draft)')
      const t = frag.get(1).get(0)
      t.format(6, 5, { bold: null })
      t.format(0, 5, { italic: {} })
      t.delete(11, 7)
      frag.get(2).delete(1, 1)
      frag.get(2).get(0).get(0).get(0).insert(4, ' and light')
      frag.delete(3, 1)
      frag.insert(1, [paragraph('inserted later', { code: {} })])
    })
    out.push({ name: 'yjs-prosemirror', version: hex(version), current: hex(Y.encodeStateAsUpdate(doc)) })
  }

  // Quill-style rich text with embeds, plus a map and an array, all edited with deletions.
  {
    const doc = new Y.Doc()
    const text = doc.getText('quill')
    const meta = doc.getMap('meta')
    const items = doc.getArray('items')
    text.insert(0, 'Title\nSome body text with a link.\n')
    text.format(0, 5, { header: 1 })
    text.format(22, 4, { link: 'https://x.test' })
    text.insertEmbed(10, { image: 'cat.png' })
    meta.set('title', 'Plan')
    meta.set('tags', ['a', 'b'])
    const nested = new Y.Map()
    meta.set('nested', nested)
    nested.set('count', 1)
    items.push([1, 'two', { three: 3 }])
    const card = new Y.Map()
    items.push([card])
    card.set('name', 'card')
    const version = Y.encodeStateAsUpdate(doc)
    doc.transact(() => {
      text.delete(10, 1)
      text.insert(0, '😀 ', { bold: true })
      text.format(3, 5, { header: null, italic: true })
      text.delete(12, 6)
      meta.set('title', 'Plan B')
      meta.delete('tags')
      nested.set('count', 2)
      meta.set('later', new Y.Text('late'))
      items.delete(0, 2)
      items.insert(1, ['new'])
      card.set('name', 'renamed')
    })
    out.push({ name: 'yjs-rich-text-map-array', version: hex(version), current: hex(Y.encodeStateAsUpdate(doc)) })
  }

  // Many random formatted edits in one text (Yjs' own formatting semantics), version midway.
  {
    const doc = new Y.Doc()
    const text = doc.getText('random')
    const rand = rng(20)
    const words = ['a', 'bc', 'é', '😀', 'xyz ', '\n']
    const formats = [{ bold: true }, { italic: true }, { bold: null }, { color: 'red' }, {}]
    let version = null
    for (let i = 0; i < 400; i++) {
      if (i === 200) version = Y.encodeStateAsUpdate(doc)
      const len = text.length
      const r = rand()
      // Positions land on character boundaries: never inside a surrogate pair.
      const s = text.toString()
      const boundaries = [0]
      for (let j = 0; j < s.length;) { j += s.codePointAt(j) > 0xffff ? 2 : 1; boundaries.push(j) }
      const at = boundaries[Math.floor(rand() * boundaries.length)]
      const upto = boundaries.filter(b => b > at)
      const end = upto.length > 0 ? upto[Math.floor(rand() * Math.min(upto.length, 4))] : at
      if (r < 0.5 || len === 0) {
        text.insert(at, words[Math.floor(rand() * words.length)], formats[Math.floor(rand() * formats.length)])
      } else if (r < 0.75) {
        if (end > at) text.delete(at, end - at)
      } else {
        if (end > at) text.format(at, end - at, formats[Math.floor(rand() * formats.length)])
      }
    }
    out.push({ name: 'yjs-random-formatted-text', version: hex(version), current: hex(Y.encodeStateAsUpdate(doc)) })
  }
  return out
}

// Sorted keys, binary as hex, shared types through their own rendering: a canonical string.
function canon (v) {
  if (v instanceof Uint8Array) return { $binary: hex(v) }
  if (v instanceof Y.AbstractType) return canon(v.toJSON())
  if (Array.isArray(v)) return v.map(canon)
  if (v && typeof v === 'object') {
    const o = {}
    for (const k of Object.keys(v).sort()) o[k] = canon(v[k])
    return o
  }
  return v
}

// A delta with adjacent text of equal formatting merged: Yjs' toDelta splits a run at a
// formatting item that changes nothing, which is not a difference in content.
function delta (ops) {
  const out = []
  for (const op of canon(ops)) {
    const last = out[out.length - 1]
    if (last && typeof last.insert === 'string' && typeof op.insert === 'string' &&
        JSON.stringify(last.attributes) === JSON.stringify(op.attributes)) {
      last.insert += op.insert
    } else {
      out.push(op)
    }
  }
  return out
}

function xmlNode (n) {
  if (n instanceof Y.XmlText) return { text: delta(n.toDelta()), attrs: canon(n.getAttributes()) }
  if (n instanceof Y.XmlElement) {
    return { tag: n.nodeName, attrs: canon(n.getAttributes()), children: n.toArray().map(xmlNode) }
  }
  return canon(n)
}

function render (doc, kinds) {
  const out = {}
  for (const name of Object.keys(kinds).sort()) {
    switch (kinds[name]) {
      case 'text': out[name] = delta(doc.getText(name).toDelta()); break
      case 'xml_text': out[name] = xmlNode(doc.get(name, Y.XmlText)); break
      case 'map': out[name] = canon(doc.getMap(name).toJSON()); break
      case 'array': out[name] = canon(doc.getArray(name).toJSON()); break
      case 'xml_fragment': out[name] = doc.getXmlFragment(name).toArray().map(xmlNode); break
      default: throw new Error(`unknown kind ${kinds[name]} of root ${name}`)
    }
  }
  return JSON.stringify(out)
}

// What a second user types while the restore is in flight, by root kind.
function concurrentEdit (doc, kinds) {
  for (const [name, kind] of Object.entries(kinds)) {
    if (kind === 'text') doc.getText(name).insert(0, 'JS>')
    if (kind === 'map') doc.getMap(name).set('js', 'meanwhile')
    if (kind === 'array') doc.getArray(name).insert(0, ['js'])
    if (kind === 'xml_fragment') doc.getXmlFragment(name).insert(0, [paragraph('JS meanwhile')])
  }
}

function check (cases) {
  const results = []
  for (const c of cases) {
    const restored = new Y.Doc()
    Y.applyUpdate(restored, unhex(c.current))
    Y.applyUpdate(restored, unhex(c.restore))
    const target = new Y.Doc()
    Y.applyUpdate(target, unhex(c.target))
    const got = render(restored, c.kinds)
    const want = render(target, c.kinds)
    // A replica that edited meanwhile, then both exchange their states.
    const other = new Y.Doc()
    Y.applyUpdate(other, unhex(c.current))
    concurrentEdit(other, c.kinds)
    const a = new Y.Doc()
    Y.applyUpdate(a, Y.encodeStateAsUpdate(restored))
    Y.applyUpdate(a, Y.encodeStateAsUpdate(other))
    Y.applyUpdate(other, Y.encodeStateAsUpdate(restored))
    const converged = render(a, c.kinds) === render(other, c.kinds)
    results.push({
      name: c.name,
      ok: got === want && converged,
      equal: got === want,
      converged,
      got,
      want,
      restored_state: hex(Y.encodeStateAsUpdate(restored))
    })
  }
  return results
}

const [mode, file] = process.argv.slice(2)
if (mode === 'make') {
  writeFileSync(file, JSON.stringify({ scenarios: scenarios() }))
} else if (mode === 'check') {
  const results = check(JSON.parse(readFileSync(file, 'utf8')).cases)
  process.stdout.write(JSON.stringify({ results }))
  process.exit(results.every(r => r.ok) ? 0 : 1)
} else {
  console.error('usage: node yjs-restore.mjs make|check <file>')
  process.exit(2)
}
