// Replays a scenario (a sequence of update bytes, hex) against the real `yjs` npm package and
// prints what Yjs ends up with, for the Rust test `tests::chorus_gc_origin` to compare yrs to.
//
//   node vendor/yrs/chorus-repro/repro.mjs vendor/yrs/chorus-repro/<name>.scenario.json
//
// yjs comes from the interop suite (`cd tests/interop && npm ci --omit=optional`), or from
// YJS_PATH. Scenario: { "roots": [[name, "text" | "xml" | "array" | "map"]], "steps": [
//   { "apply": "<hex update v1>" } | { "reload": true } ] }. A reload replaces the document by
// a fresh `new Y.Doc()` holding `encodeStateAsUpdate` of the old one, as a restarted server.
// Output (stdout, JSON): for the document and for a replica built from its encoded state,
// the state vector, the roots' content, and per client the clock ranges that are garbage
// ("gc"), deleted items ("deleted") or live items ("live"), adjacent ranges of one kind merged
// so that yrs and Yjs splitting blocks differently does not matter.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const yjsPath = process.env.YJS_PATH ||
  path.join(here, '../../../tests/interop/node_modules/yjs/dist/yjs.mjs')
const Y = await import(pathToFileURL(yjsPath).href)

const scenario = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const fromHex = (h) => Uint8Array.from(Buffer.from(h, 'hex'))

const content = (doc) => scenario.roots.map(([name, kind]) => {
  switch (kind) {
    case 'text': return [name, doc.getText(name).toString()]
    case 'xml': return [name, doc.getXmlFragment(name).toString()]
    case 'array': return [name, JSON.stringify(doc.getArray(name).toJSON())]
    case 'map': return [name, JSON.stringify(doc.getMap(name).toJSON())]
    default: throw new Error('root kind ' + kind)
  }
})

const stateVector = (doc) => [...Y.decodeStateVector(Y.encodeStateVector(doc))]
  .filter(([, clock]) => clock > 0)
  .sort((a, b) => a[0] - b[0])

const ranges = (doc) => [...doc.store.clients.entries()]
  .sort((a, b) => a[0] - b[0])
  .map(([client, structs]) => {
    const out = []
    for (const s of structs) {
      const kind = s.constructor === Y.GC ? 'gc' : (s.constructor === Y.Item ? (s.deleted ? 'deleted' : 'live') : 'skip')
      const last = out[out.length - 1]
      if (last && last[2] === kind && last[1] === s.id.clock) {
        last[1] += s.length
      } else {
        out.push([s.id.clock, s.id.clock + s.length, kind])
      }
    }
    return [client, out]
  })

const describe = (doc) => ({ sv: stateVector(doc), content: content(doc), ranges: ranges(doc) })

let doc = new Y.Doc()
for (const step of scenario.steps) {
  if (step.reload) {
    const state = Y.encodeStateAsUpdate(doc)
    doc = new Y.Doc()
    Y.applyUpdate(doc, state)
  } else {
    Y.applyUpdate(doc, fromHex(step.apply))
  }
}
const replica = new Y.Doc()
Y.applyUpdate(replica, Y.encodeStateAsUpdate(doc))
// One line per field, so that the committed expectations read (and diff) well.
const show = (d) => Object.entries(d).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(',\n')
console.log(`{\n "doc": {\n${show(describe(doc))}\n },\n "replica": {\n${show(describe(replica))}\n }\n}`)
