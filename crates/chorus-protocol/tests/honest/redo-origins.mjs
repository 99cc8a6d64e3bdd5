// Honest Yjs writes items whose two origins are of one client and are NOT list neighbours:
// UndoManager redo of a deleted paragraph whose text was itself restored by an earlier undo.
// Deterministic, no network: one `yjs` document with a fixed client id, public API only.
//
//   node crates/chorus-protocol/tests/honest/redo-origins.mjs           # print, hex
//   node crates/chorus-protocol/tests/honest/redo-origins.mjs --write   # also (re)write the .bin files
//
// yjs comes from the interop suite (`cd tests/interop && npm ci --omit=optional`) or YJS_PATH.
// See README.md next to this file for what the two cases show and how the Rust test uses them.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const yjsPath = process.env.YJS_PATH ||
  path.join(here, '../../../../tests/interop/node_modules/yjs/dist/yjs.mjs')
const Y = await import(pathToFileURL(yjsPath).href)

/**
 * `text` is typed into a paragraph, deleted and restored by undo (a redo copy R1, and the old
 * item's `redone` points at it), split by typing "c" at `splitAt`, then the whole paragraph is
 * deleted and restored by undo. Returns every update the document emitted (one per
 * transaction, what y-websocket sends while connected) and the whole state (what it sends as
 * sync step 2 after having been offline throughout).
 */
function scenario (text, splitAt) {
  const doc = new Y.Doc({ gc: true })
  doc.clientID = 1
  const updates = []
  doc.on('update', (u) => updates.push(u))
  const frag = doc.getXmlFragment('prosemirror')
  // captureTimeout 0: every transaction is its own undo step, as after stopCapturing().
  const um = new Y.UndoManager(frag, { captureTimeout: 0 })
  const p = new Y.XmlElement('paragraph')
  frag.insert(0, [p])
  const t = new Y.XmlText()
  p.insert(0, [t])
  t.insert(0, text) //                       R: clocks 2..
  t.delete(0, text.length) //                R deleted
  um.undo() //                               redo of R: R1 (new clocks) left of R, R.redone = R1
  t.insert(splitAt, 'c') //                  R1 split in two, "c" between the halves
  frag.delete(0, 1) //                       the paragraph goes, with R1's halves and "c"
  um.undo() //                               redo of the paragraph and its children
  const state = Y.encodeStateAsUpdate(doc)
  return { updates, state, xml: frag.toString() }
}

const hex = (u) => Buffer.from(u).toString('hex')
const describe = (u) => Y.decodeUpdate(u).structs
  .filter((s) => s.origin !== undefined)
  .map((s) => `${s.id.client}#${s.id.clock}+${s.length} left ${s.origin ? s.origin.client + '#' + s.origin.clock : '-'} right ${s.rightOrigin ? s.rightOrigin.client + '#' + s.rightOrigin.clock : '-'}`)

const cases = {
  // R1 = "ab", split into "a" | "b": the redo of "b" gets left origin = right origin = the redo of "a".
  'redo-left-equals-right': scenario('ab', 1),
  // R1 = "abc", split into "ab" | "c": the redo of "c" gets left origin = last clock of the redo
  // of "ab", right origin = its first clock, i.e. a right origin left of the left one in one struct.
  'redo-right-left-of-left': scenario('abc', 2)
}

const write = process.argv.includes('--write')
for (const [name, { updates, state, xml }] of Object.entries(cases)) {
  console.log(`== ${name}: ${xml}`)
  updates.forEach((u, i) => console.log(`update ${i}: ${hex(u)}`))
  console.log('last update (the redo of the paragraph):')
  for (const line of describe(updates[updates.length - 1])) console.log('  ' + line)
  console.log(`state: ${hex(state)}`)
  if (write) {
    // <name>.updates.bin: each update as u32 little-endian length + bytes, in order (the
    // corpus' conn-NNN.bin framing without the y-websocket message header).
    const framed = Buffer.concat(updates.flatMap((u) => {
      const len = Buffer.alloc(4)
      len.writeUInt32LE(u.length)
      return [len, Buffer.from(u)]
    }))
    fs.writeFileSync(path.join(here, `${name}.updates.bin`), framed)
    fs.writeFileSync(path.join(here, `${name}.state.bin`), state)
  }
}
