// What the real `yjs` npm package writes for a `Y.XmlHook`, and what it reads back from yrs, for
// the Rust test `tests::chorus_xml_hook` (Chorus patch "XmlHook keeps its hook name",
// CHORUS-PATCHES.md).
//
//   node vendor/yrs/chorus-repro/xml-hook.mjs record > vendor/yrs/chorus-repro/xml-hook.yjs.json
//   node vendor/yrs/chorus-repro/xml-hook.mjs read vendor/yrs/chorus-repro/xml-hook.yrs.json \
//     > vendor/yrs/chorus-repro/xml-hook.yrs-in-yjs.json
//
// yjs comes from the interop suite (`cd tests/interop && npm ci --omit=optional`), or from
// YJS_PATH.
//
// `record`: client 1 inserts, into the root XmlFragment "xml", a hook named "my-hook" followed
// by a `<p>after</p>` element (update 1, so that a decoder that skips the hook name mis-reads
// what follows), then sets two keys on the hook (update 2: its parent is the hook's id, not a
// root); client 2 then overwrites one key and adds a hook nested in the first one's map
// (update 3). Prints the updates (v1 and v2), the state of a document that applied them
// (`encodeStateAsUpdate`, v1 and v2), and what Yjs reads (`describe` below); also the update of
// client 3 inserting a hook with an empty name (`empty_name_v1`) and what Yjs reads from it.
//
// `read <file>`: applies the `state_v1` and `state_v2` of a JSON file (what yrs encoded) each to
// a fresh Y.Doc and prints what Yjs reads, and the state Yjs itself encodes from it.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const yjsPath = process.env.YJS_PATH ||
  path.join(here, '../../../tests/interop/node_modules/yjs/dist/yjs.mjs')
const Y = await import(pathToFileURL(yjsPath).href)

const toHex = (u8) => Buffer.from(u8).toString('hex')
const fromHex = (h) => Uint8Array.from(Buffer.from(h, 'hex'))

// A hook as plain data: its name and its map (nested hooks recursively, other values as JSON).
const hookData = (hook) => {
  const entries = {}
  for (const [k, v] of [...hook.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    entries[k] = v instanceof Y.XmlHook ? hookData(v) : v
  }
  return { hook: hook.hookName, entries }
}

const describe = (doc) => {
  const frag = doc.getXmlFragment('xml')
  return {
    children: frag.toArray().map((child) =>
      child instanceof Y.XmlHook ? hookData(child) : { xml: child.toString() })
  }
}

const mode = process.argv[2]
if (mode === 'record') {
  const a = new Y.Doc()
  a.clientID = 1
  const b = new Y.Doc()
  b.clientID = 2
  const updates = []
  const local = (u, _origin, _doc, tr) => { if (tr.local) updates.push(u) }
  a.on('update', local)
  b.on('update', local)

  const frag = a.getXmlFragment('xml')
  const p = new Y.XmlElement('p')
  p.insert(0, [new Y.XmlText('after')])
  const hook = new Y.XmlHook('my-hook')
  frag.insert(0, [hook, p]) // update 1
  a.transact(() => { // update 2
    hook.set('title', 'Hello')
    hook.set('count', 42)
  })
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
  const hookB = b.getXmlFragment('xml').get(0)
  b.transact(() => { // update 3
    hookB.set('title', 'Bonjour')
    hookB.set('inner', new Y.XmlHook('inner-hook'))
    hookB.get('inner').set('k', 'v')
  })

  const doc = new Y.Doc()
  for (const u of updates) Y.applyUpdate(doc, u)

  // A hook with an empty name, alone in its update: the name is the single byte 0, which a
  // decoder that skips it reads as an empty delete set, so that it decodes "fine".
  const e = new Y.Doc()
  e.clientID = 3
  let emptyName
  e.on('update', (u) => { emptyName = u })
  e.getXmlFragment('xml').insert(0, [new Y.XmlHook('')])

  const out = {
    updates_v1: updates.map(toHex),
    updates_v2: updates.map((u) => toHex(Y.convertUpdateFormatV1ToV2(u))),
    state_v1: toHex(Y.encodeStateAsUpdate(doc)),
    state_v2: toHex(Y.encodeStateAsUpdateV2(doc)),
    yjs: describe(doc),
    empty_name_v1: toHex(emptyName),
    empty_name_state_v1: toHex(Y.encodeStateAsUpdate(e)),
    empty_name_yjs: describe(e)
  }
  console.log(JSON.stringify(out, null, 1))
} else if (mode === 'read') {
  const input = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'))
  const v1 = new Y.Doc()
  Y.applyUpdate(v1, fromHex(input.state_v1))
  const v2 = new Y.Doc()
  Y.applyUpdateV2(v2, fromHex(input.state_v2))
  console.log(JSON.stringify({
    from_v1: { ...describe(v1), state_v1: toHex(Y.encodeStateAsUpdate(v1)) },
    from_v2: { ...describe(v2), state_v2: toHex(Y.encodeStateAsUpdateV2(v2)) }
  }, null, 1))
} else {
  console.error('usage: xml-hook.mjs record | read <file>')
  process.exit(2)
}
