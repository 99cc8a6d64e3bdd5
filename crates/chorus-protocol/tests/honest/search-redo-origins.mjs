// Random honest sessions (the honest-traffic generator's editing actions, `tests/interop/honest/
// edits.mjs`, three in-memory Yjs documents that sync directly, go offline and come back, and
// use Y.UndoManager) that report every local update with an item the old origin rules refused:
//   (a)          left origin = right origin;
//   (b)          an origin of the item's own client at or past its own clock (never seen);
//   (same-struct) two origins of one client inside one struct of the writer's document, not
//                 neighbours (a case of sub-rule (c)).
// For each, it also tells whether the writer's own document reads like a fresh replica built
// from its encoded state (Yjs alone can diverge on these items).
//
//   node crates/chorus-protocol/tests/honest/search-redo-origins.mjs [from=1] [to=500] [steps=150]
//
// Seeds 1-1000 at 150 steps (yjs 13.6.33) gave (a) at seed 486, same-struct at 455, 574, 645,
// 726, ...; at seed 645 the writer reads `x😀y . 🇯🇵` where a replica of its state reads
// `x😀y .🇵 🇯`.
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const repo = path.join(here, '../../../..')
const Y = await import(pathToFileURL(process.env.YJS_PATH ||
  path.join(repo, 'tests/interop/node_modules/yjs/dist/yjs.mjs')).href)
const { Rng } = await import(pathToFileURL(path.join(repo, 'tests/interop/honest/rng.mjs')).href)
const { textEdits, xmlEdits, mapEdits, ROOTS } =
  await import(pathToFileURL(path.join(repo, 'tests/interop/honest/edits.mjs')).href)

function check (doc, update) {
  for (const s of Y.decodeUpdate(update).structs) {
    if (!(s instanceof Y.Item)) continue
    for (const o of [s.origin, s.rightOrigin]) {
      if (o && o.client === s.id.client && o.clock >= s.id.clock) return { s, rule: 'b' }
    }
    const o = s.origin
    const r = s.rightOrigin
    if (!o || !r || o.client !== r.client || o.clock + 1 === r.clock) continue
    if (o.clock === r.clock) return { s, rule: 'a' }
    const structs = doc.store.clients.get(o.client)
    const it = structs && structs.find(x => x.id.clock <= o.clock && o.clock < x.id.clock + x.length)
    if (it && it.id.clock <= r.clock && r.clock < it.id.clock + it.length) return { s, rule: 'same-struct' }
  }
  return null
}

const read = (d) => d.getXmlFragment(ROOTS.xml).toString() + '|' + JSON.stringify(d.getText(ROOTS.text).toDelta()) +
  '|' + JSON.stringify(d.getMap(ROOTS.map).toJSON()) + '|' + JSON.stringify(d.getArray(ROOTS.array).toJSON())
const id = (x) => `${x.client}#${x.clock}`
const [from, to, steps] = [Number(process.argv[2] ?? 1), Number(process.argv[3] ?? 500), Number(process.argv[4] ?? 150)]

for (let seed = from; seed <= to; seed++) {
  const rng = new Rng(seed)
  const clients = [0, 1, 2].map((i) => {
    const doc = new Y.Doc({ gc: rng.chance(0.5) })
    doc.clientID = i + 1
    const undo = new Y.UndoManager([doc.getText(ROOTS.text), doc.getXmlFragment(ROOTS.xml),
      doc.getMap(ROOTS.map), doc.getArray(ROOTS.array)], { captureTimeout: rng.pick([0, 300, 500]) })
    return { doc, undo, offline: false }
  })
  let found = null
  for (const c of clients) {
    c.doc.on('update', (u, origin) => {
      if (origin !== 'remote' && !found) {
        const bad = check(c.doc, u)
        if (bad) found = { c, ...bad }
      }
    })
  }
  const ops = []
  for (let step = 0; step < steps && !found; step++) {
    const ci = rng.int(3)
    const c = clients[ci]
    const doc = c.doc
    const kind = rng.weighted([[30, 'text'], [30, 'xml'], [10, 'map'], [15, 'undo'], [8, 'offline'], [6, 'sync']])
    let did = null
    if (kind === 'text') {
      did = rng.weighted([[40, 'type'], [8, 'typeFormatted'], [8, 'format'], [4, 'embed'], [14, 'delete'], [1, 'cut']]
        .map(([w, k]) => [w, textEdits[k]]))(rng, doc)
    } else if (kind === 'xml') {
      did = rng.weighted([[5, 'addParagraph'], [2, 'addList'], [3, 'addListItem'], [30, 'type'], [5, 'format'],
        [8, 'deleteText'], [3, 'split'], [2, 'join'], [3, 'deleteBlock'], [2, 'deleteListItem'], [1, 'setAttribute']]
        .map(([w, k]) => [w, xmlEdits[k]]))(rng, doc)
    } else if (kind === 'map') {
      did = rng.weighted([[4, 'addCard'], [2, 'deleteCard'], [3, 'addNote'], [12, 'type'], [3, 'deleteText'],
        [3, 'addItem'], [2, 'deleteItem'], [2, 'moveItem']].map(([w, k]) => [w, mapEdits[k]]))(rng, doc)
    } else if (kind === 'undo') {
      if (rng.chance(0.6)) {
        if (c.undo.undoStack.length) { c.undo.undo(); did = 'undo' }
      } else if (c.undo.redoStack.length) { c.undo.redo(); did = 'redo' }
      if (rng.chance(0.3)) c.undo.stopCapturing()
    } else if (kind === 'offline') {
      c.offline = !c.offline
      did = c.offline ? 'offline' : 'online'
    }
    if (did) ops.push(`c${ci}:${did}`)
    for (const a of clients) {
      for (const b of clients) {
        if (a !== b && !a.offline && !b.offline) {
          Y.applyUpdate(b.doc, Y.encodeStateAsUpdate(a.doc, Y.encodeStateVector(b.doc)), 'remote')
        }
      }
    }
  }
  if (found) {
    const { s, rule, c } = found
    const replica = new Y.Doc()
    Y.applyUpdate(replica, Y.encodeStateAsUpdate(c.doc))
    console.log(`seed ${seed}: rule ${rule}: item ${id(s.id)} left ${id(s.origin)} right ${id(s.rightOrigin)}; ` +
      `writer reads like a replica of its state: ${read(c.doc) === read(replica)}; last actions ${ops.slice(-4).join(' ')}`)
  }
}
