// What honest editors do to a Yjs document, as small functions of (doc, rng).
//
// The shared schema of every room:
//   `text`         Y.Text: rich text with emoji, formatting attributes and embeds (a Quill-like editor)
//   `prosemirror`  Y.XmlFragment: paragraphs, headings and bullet lists as y-prosemirror builds them
//                  (Y.XmlElement('paragraph') > Y.XmlText; 'bullet_list' > 'list_item' > 'paragraph')
//   `meta`         Y.Map of cards: Y.Map { title: Y.Text, notes: Y.Array<Y.Text>, tags: Y.Array, done }
//   `items`        Y.Array of Y.Text, Y.Map { label: Y.Text, n } and plain values
//
// Positions in a text are always computed from the editing client's own current content and
// never fall between the two halves of a surrogate pair (an emoji), as an editor's cursor never
// does. Each function returns a short name of what it did (for statistics and failure reports),
// or null if there was nothing to do.

import * as Y from 'yjs'

export const ROOTS = { text: 'text', xml: 'prosemirror', map: 'meta', array: 'items' }

const WORDS = [
  'the ', 'quick ', 'brown ', 'fox ', 'jumps ', 'wörld ', 'naïve ', 'café ', '日本語', '한국어 ', '中文 ',
  'ñ', 'e\u0301', 'a', 'b', 'c', ' ', ' ', '. ', ', ', '\n',
  '😀', '👍🏽', '👨‍👩‍👧‍👦', '🇯🇵', '🎉 ', '𝄞', '💩💩', '🙂 ok ', 'x😀y', '🧑🏾‍💻 '
]

const TEXT_MARKS = [
  { bold: true }, { italic: true }, { underline: true }, { strike: true },
  { link: 'https://example.com/a?b=c' }, { color: '#e91e63' }, { bold: true, italic: true }
]
const TEXT_UNMARKS = [{ bold: null }, { italic: null }, { link: null }, { color: null }]
const XML_MARKS = [{ strong: {} }, { em: {} }, { code: {} }, { link: { href: 'https://example.com/p' } }]
const XML_UNMARKS = [{ strong: null }, { em: null }, { link: null }]

const isHigh = c => c >= 0xd800 && c <= 0xdbff
const isLow = c => c >= 0xdc00 && c <= 0xdfff

/**
 * The type's content as a string in which every embed counts as one character (U+FFFC), so its
 * indices are the indices `Y.Text.insert/delete/format` take.
 */
export function shadow (ytext) {
  let s = ''
  for (const op of ytext.toDelta()) s += typeof op.insert === 'string' ? op.insert : '\uFFFC'
  return s
}

/** Whether index `i` of `s` is between the two halves of a surrogate pair. */
export function insidePair (s, i) {
  return i > 0 && i < s.length && isLow(s.charCodeAt(i)) && isHigh(s.charCodeAt(i - 1))
}

function posIn (rng, s) {
  const i = rng.int(s.length + 1)
  return insidePair(s, i) ? i - 1 : i
}

/** A non-empty range [from, to) of `s` with whole characters, or null if `s` is empty. */
function rangeIn (rng, s, maxLen) {
  if (s.length === 0) return null
  let from = rng.int(s.length)
  if (insidePair(s, from)) from--
  let to = Math.min(s.length, from + 1 + rng.int(maxLen))
  if (insidePair(s, to)) to++
  return [from, to]
}

function words (rng, n) {
  let out = ''
  for (let i = 0; i < n; i++) out += rng.pick(WORDS)
  return out
}

/**
 * Types 1-3 words into `ytext` one code point at a time, one transaction per keystroke, as a
 * person types. Returns the number of keystrokes.
 */
export function typeInto (rng, ytext, attributes) {
  const s = shadow(ytext)
  let pos = posIn(rng, s)
  let n = 0
  for (const ch of words(rng, rng.between(1, 3))) {
    if (attributes) ytext.insert(pos, ch, attributes)
    else ytext.insert(pos, ch)
    pos += ch.length
    n++
  }
  return n
}

function deleteIn (rng, ytext, maxLen = 12) {
  const r = rangeIn(rng, shadow(ytext), maxLen)
  if (r === null) return false
  ytext.delete(r[0], r[1] - r[0])
  return true
}

function formatIn (rng, ytext, marks, maxLen = 20) {
  const r = rangeIn(rng, shadow(ytext), maxLen)
  if (r === null) return false
  ytext.format(r[0], r[1] - r[0], rng.pick(marks))
  return true
}

/** Tens of KiB of text in one transaction, as a paste: lines, emoji and some formatting. */
export function pasteText (rng, kib) {
  const target = kib * 1024
  const lines = []
  let size = 0
  while (size < target) {
    const line = words(rng, rng.between(5, 30)).replace(/\n/g, '') + '\n'
    lines.push(line)
    size += line.length
  }
  return lines
}

// ---------------------------------------------------------------- Y.Text (`text`)

export const textEdits = {
  type (rng, doc) {
    typeInto(rng, doc.getText(ROOTS.text))
    return 'text.type'
  },
  typeFormatted (rng, doc) {
    typeInto(rng, doc.getText(ROOTS.text), rng.pick(TEXT_MARKS))
    return 'text.type-formatted'
  },
  format (rng, doc) {
    return formatIn(rng, doc.getText(ROOTS.text), rng.chance(0.75) ? TEXT_MARKS : TEXT_UNMARKS) ? 'text.format' : null
  },
  embed (rng, doc) {
    const t = doc.getText(ROOTS.text)
    const pos = posIn(rng, shadow(t))
    const embed = rng.chance(0.5) ? { image: `https://example.com/i/${rng.int(1000)}.png` } : { mention: { id: rng.int(100), name: 'Zoë 🙂' } }
    t.insertEmbed(pos, embed, rng.chance(0.3) ? { width: String(rng.between(10, 500)) } : undefined)
    return 'text.embed'
  },
  delete (rng, doc) {
    return deleteIn(rng, doc.getText(ROOTS.text)) ? 'text.delete' : null
  },
  /** Select-all-ish: a large range goes (cut). */
  cut (rng, doc) {
    return deleteIn(rng, doc.getText(ROOTS.text), 400) ? 'text.cut' : null
  }
}

/** A large paste into `text` (or into a paragraph), one transaction. */
export function paste (rng, doc, kib) {
  const lines = pasteText(rng, kib)
  if (rng.chance(0.5)) {
    const t = doc.getText(ROOTS.text)
    const pos = posIn(rng, shadow(t))
    doc.transact(() => {
      let at = pos
      for (const line of lines) {
        const attrs = rng.chance(0.2) ? rng.pick(TEXT_MARKS) : {}
        t.insert(at, line, attrs)
        at += line.length
      }
    })
    return 'text.paste'
  }
  const frag = doc.getXmlFragment(ROOTS.xml)
  doc.transact(() => {
    let at = rng.int(frag.length + 1)
    for (const line of lines) {
      const p = new Y.XmlElement('paragraph')
      frag.insert(at++, [p])
      const text = new Y.XmlText()
      p.insert(0, [text])
      text.insert(0, line.slice(0, -1), rng.chance(0.2) ? rng.pick(XML_MARKS) : {})
    }
  })
  return 'xml.paste'
}

// ---------------------------------------------------------------- Y.XmlFragment (`prosemirror`)

const BLOCKS = new Set(['paragraph', 'heading'])
const LISTS = new Set(['bullet_list', 'ordered_list'])

/** Every text block (paragraph or heading, also inside list items) with its element. */
export function textBlocks (frag) {
  const out = []
  const walk = node => {
    for (const child of node.toArray()) {
      if (!(child instanceof Y.XmlElement)) continue
      if (BLOCKS.has(child.nodeName)) {
        const t = child.get(0)
        if (t instanceof Y.XmlText) out.push({ el: child, text: t })
      } else {
        walk(child)
      }
    }
  }
  walk(frag)
  return out
}

function lists (frag) {
  return frag.toArray().filter(n => n instanceof Y.XmlElement && LISTS.has(n.nodeName))
}

/** Builds a block inside `parent` at `index` (both integrated), in the caller's transaction. */
function insertBlock (rng, parent, index, content) {
  const heading = rng.chance(0.2)
  const el = new Y.XmlElement(heading ? 'heading' : 'paragraph')
  parent.insert(index, [el])
  if (heading) el.setAttribute('level', String(rng.between(1, 3)))
  const text = new Y.XmlText()
  el.insert(0, [text])
  if (content) text.insert(0, content)
  return text
}

function insertListItem (rng, list, index) {
  const item = new Y.XmlElement('list_item')
  list.insert(index, [item])
  const p = new Y.XmlElement('paragraph')
  item.insert(0, [p])
  const text = new Y.XmlText()
  p.insert(0, [text])
  text.insert(0, words(rng, rng.between(1, 4)))
}

/** The delta of `ytext` from index `from` on (strings split at `from`, embeds kept whole). */
function deltaFrom (ytext, from) {
  const out = []
  let at = 0
  for (const op of ytext.toDelta()) {
    const len = typeof op.insert === 'string' ? op.insert.length : 1
    if (at + len > from) {
      const insert = typeof op.insert === 'string' ? op.insert.slice(Math.max(0, from - at)) : op.insert
      out.push(op.attributes ? { insert, attributes: op.attributes } : { insert })
    }
    at += len
  }
  return out
}

export const xmlEdits = {
  addParagraph (rng, doc) {
    const frag = doc.getXmlFragment(ROOTS.xml)
    doc.transact(() => insertBlock(rng, frag, rng.int(frag.length + 1), words(rng, rng.between(0, 4))))
    return 'xml.add-paragraph'
  },
  addList (rng, doc) {
    const frag = doc.getXmlFragment(ROOTS.xml)
    doc.transact(() => {
      const list = new Y.XmlElement(rng.chance(0.7) ? 'bullet_list' : 'ordered_list')
      frag.insert(rng.int(frag.length + 1), [list])
      const n = rng.between(1, 3)
      for (let i = 0; i < n; i++) insertListItem(rng, list, i)
    })
    return 'xml.add-list'
  },
  addListItem (rng, doc) {
    const ls = lists(doc.getXmlFragment(ROOTS.xml))
    if (ls.length === 0) return null
    const list = rng.pick(ls)
    doc.transact(() => insertListItem(rng, list, rng.int(list.length + 1)))
    return 'xml.add-list-item'
  },
  type (rng, doc) {
    const blocks = textBlocks(doc.getXmlFragment(ROOTS.xml))
    if (blocks.length === 0) return null
    typeInto(rng, rng.pick(blocks).text, rng.chance(0.2) ? rng.pick(XML_MARKS) : undefined)
    return 'xml.type'
  },
  format (rng, doc) {
    const blocks = textBlocks(doc.getXmlFragment(ROOTS.xml))
    if (blocks.length === 0) return null
    return formatIn(rng, rng.pick(blocks).text, rng.chance(0.75) ? XML_MARKS : XML_UNMARKS) ? 'xml.format' : null
  },
  deleteText (rng, doc) {
    const blocks = textBlocks(doc.getXmlFragment(ROOTS.xml))
    if (blocks.length === 0) return null
    return deleteIn(rng, rng.pick(blocks).text) ? 'xml.delete-text' : null
  },
  /** Enter in the middle of a paragraph: the rest moves into a new paragraph after it. */
  split (rng, doc) {
    const blocks = textBlocks(doc.getXmlFragment(ROOTS.xml))
    if (blocks.length === 0) return null
    const { el, text } = rng.pick(blocks)
    const parent = el.parent
    const s = shadow(text)
    const at = posIn(rng, s)
    const rest = deltaFrom(text, at)
    doc.transact(() => {
      if (at < s.length) text.delete(at, s.length - at)
      const index = parent.toArray().indexOf(el) + 1
      const p = new Y.XmlElement('paragraph')
      parent.insert(index, [p])
      const t = new Y.XmlText()
      p.insert(0, [t])
      if (rest.length > 0) t.applyDelta(rest)
    })
    return 'xml.split'
  },
  /** Backspace at the start of a paragraph: its content joins the previous one; it goes. */
  join (rng, doc) {
    const frag = doc.getXmlFragment(ROOTS.xml)
    const top = frag.toArray()
    const pairs = []
    for (let i = 1; i < top.length; i++) {
      if (top[i - 1] instanceof Y.XmlElement && top[i] instanceof Y.XmlElement &&
          BLOCKS.has(top[i - 1].nodeName) && BLOCKS.has(top[i].nodeName) &&
          top[i - 1].get(0) instanceof Y.XmlText && top[i].get(0) instanceof Y.XmlText) pairs.push(i)
    }
    if (pairs.length === 0) return null
    const i = rng.pick(pairs)
    const prev = top[i - 1].get(0)
    const moved = top[i].get(0).toDelta()
    doc.transact(() => {
      const end = shadow(prev).length
      if (moved.length > 0) prev.applyDelta([{ retain: end }, ...moved])
      frag.delete(i, 1)
    })
    return 'xml.join'
  },
  deleteBlock (rng, doc) {
    const frag = doc.getXmlFragment(ROOTS.xml)
    if (frag.length === 0) return null
    const n = rng.chance(0.8) ? 1 : rng.between(1, Math.min(4, frag.length))
    const at = rng.int(frag.length - n + 1)
    frag.delete(at, n)
    return 'xml.delete-block'
  },
  deleteListItem (rng, doc) {
    const ls = lists(doc.getXmlFragment(ROOTS.xml)).filter(l => l.length > 0)
    if (ls.length === 0) return null
    const list = rng.pick(ls)
    list.delete(rng.int(list.length), 1)
    return 'xml.delete-list-item'
  },
  setAttribute (rng, doc) {
    const blocks = textBlocks(doc.getXmlFragment(ROOTS.xml)).filter(b => b.el.nodeName === 'heading')
    if (blocks.length === 0) return null
    rng.pick(blocks).el.setAttribute('level', String(rng.between(1, 3)))
    return 'xml.set-attribute'
  }
}

// ---------------------------------------------------------------- Y.Map / Y.Array (`meta`, `items`)

/** Every Y.Text nested in `meta` and `items`. */
export function nestedTexts (doc) {
  const out = []
  const walk = type => {
    if (type instanceof Y.Text) out.push(type)
    else if (type instanceof Y.Map) for (const v of type.values()) walk(v)
    else if (type instanceof Y.Array) for (const v of type.toArray()) walk(v)
  }
  walk(doc.getMap(ROOTS.map))
  walk(doc.getArray(ROOTS.array))
  return out
}

function cards (doc) {
  return [...doc.getMap(ROOTS.map).entries()].filter(([, v]) => v instanceof Y.Map)
}

export const mapEdits = {
  addCard (rng, doc) {
    const meta = doc.getMap(ROOTS.map)
    doc.transact(() => {
      const card = new Y.Map()
      meta.set(`card-${rng.int(50)}`, card)
      const title = new Y.Text()
      card.set('title', title)
      title.insert(0, words(rng, rng.between(1, 3)))
      const notes = new Y.Array()
      card.set('notes', notes)
      const note = new Y.Text()
      notes.push([note])
      note.insert(0, words(rng, rng.between(0, 3)))
      card.set('tags', Y.Array.from(['a', 'b'].slice(0, rng.int(3))))
      card.set('done', false)
    })
    return 'map.add-card'
  },
  deleteCard (rng, doc) {
    const cs = cards(doc)
    if (cs.length === 0) return null
    doc.getMap(ROOTS.map).delete(rng.pick(cs)[0])
    return 'map.delete-card'
  },
  setDone (rng, doc) {
    const cs = cards(doc)
    if (cs.length === 0) return null
    rng.pick(cs)[1].set('done', rng.chance(0.5))
    return 'map.set-value'
  },
  addNote (rng, doc) {
    const notes = cards(doc).map(([, c]) => c.get('notes')).filter(n => n instanceof Y.Array)
    if (notes.length === 0) return null
    const list = rng.pick(notes)
    doc.transact(() => {
      const note = new Y.Text()
      list.insert(rng.int(list.length + 1), [note])
      note.insert(0, words(rng, rng.between(1, 3)))
    })
    return 'map.add-note'
  },
  deleteNote (rng, doc) {
    const notes = cards(doc).map(([, c]) => c.get('notes')).filter(n => n instanceof Y.Array && n.length > 0)
    if (notes.length === 0) return null
    const list = rng.pick(notes)
    list.delete(rng.int(list.length), 1)
    return 'map.delete-note'
  },
  type (rng, doc) {
    const texts = nestedTexts(doc)
    if (texts.length === 0) return null
    typeInto(rng, rng.pick(texts))
    return 'map.type'
  },
  deleteText (rng, doc) {
    const texts = nestedTexts(doc)
    if (texts.length === 0) return null
    return deleteIn(rng, rng.pick(texts)) ? 'map.delete-text' : null
  },
  addItem (rng, doc) {
    const items = doc.getArray(ROOTS.array)
    const at = rng.int(items.length + 1)
    doc.transact(() => {
      const kind = rng.int(3)
      if (kind === 0) {
        const t = new Y.Text()
        items.insert(at, [t])
        t.insert(0, words(rng, rng.between(1, 3)))
      } else if (kind === 1) {
        const m = new Y.Map()
        items.insert(at, [m])
        const label = new Y.Text()
        m.set('label', label)
        label.insert(0, words(rng, 2))
        m.set('n', rng.int(1000))
      } else {
        items.insert(at, [rng.pick([1, 'two', { three: [3] }, null, true])])
      }
    })
    return 'array.add-item'
  },
  deleteItem (rng, doc) {
    const items = doc.getArray(ROOTS.array)
    if (items.length === 0) return null
    items.delete(rng.int(items.length), 1)
    return 'array.delete-item'
  },
  /** Drag and drop: a copy goes in at the new place, the original goes. */
  moveItem (rng, doc) {
    const items = doc.getArray(ROOTS.array)
    if (items.length < 2) return null
    const from = rng.int(items.length)
    const value = items.get(from)
    const copy = value instanceof Y.AbstractType ? value.clone() : value
    doc.transact(() => {
      items.delete(from, 1)
      items.insert(rng.int(items.length + 1), [copy])
    })
    return 'array.move-item'
  }
}

// ---------------------------------------------------------------- targets for concurrent deletes

/**
 * Something a client may delete while others type inside it: a top-level block or list, a list
 * item, or a card. Returns `{ kind, id, remove, textOf }` where `id` is the Yjs item id of the
 * target's type (the same in every replica that has it), `remove()` deletes it in this doc and
 * `textOf(type)` finds a text inside that type to type into (in any replica).
 */
export function pickTarget (rng, doc) {
  const frag = doc.getXmlFragment(ROOTS.xml)
  const meta = doc.getMap(ROOTS.map)
  const choices = []
  frag.toArray().forEach((node, i) => {
    if (node instanceof Y.XmlElement) choices.push({ kind: `xml.${node.nodeName}`, type: node, remove: () => frag.delete(i, 1) })
    if (node instanceof Y.XmlElement && LISTS.has(node.nodeName)) {
      node.toArray().forEach((item, j) => {
        if (item instanceof Y.XmlElement) choices.push({ kind: 'xml.list_item', type: item, remove: () => node.delete(j, 1) })
      })
    }
  })
  for (const [key, card] of cards(doc)) choices.push({ kind: 'map.card', type: card, remove: () => meta.delete(key) })
  if (choices.length === 0) return null
  const chosen = rng.pick(choices)
  return { kind: chosen.kind, id: chosen.type._item.id, remove: chosen.remove }
}

/** The live type with item id `id` in `doc`, or null if this replica lacks it or it is deleted. */
export function typeById (doc, id) {
  const clock = doc.store.clients.get(id.client)
  if (clock === undefined) return null
  if (Y.getState(doc.store, id.client) <= id.clock) return null
  const item = Y.getItem(doc.store, id)
  if (!(item instanceof Y.Item) || item.deleted || !(item.content instanceof Y.ContentType)) return null
  return item.content.type
}

/** A text somewhere inside `type` (depth first), or null. */
export function textInside (type) {
  if (type instanceof Y.Text) return type // Y.XmlText is a Y.Text
  if (type instanceof Y.XmlElement || type instanceof Y.XmlFragment) {
    for (const child of type.toArray()) {
      const t = textInside(child)
      if (t !== null) return t
    }
    return null
  }
  if (type instanceof Y.Map) {
    for (const key of ['title', 'notes', 'label']) {
      const v = type.get(key)
      if (v instanceof Y.AbstractType) {
        const t = textInside(v)
        if (t !== null) return t
      }
    }
    return null
  }
  if (type instanceof Y.Array) {
    for (const v of type.toArray()) {
      if (v instanceof Y.AbstractType) {
        const t = textInside(v)
        if (t !== null) return t
      }
    }
  }
  return null
}

// ---------------------------------------------------------------- comparison

function canonical (value) {
  if (Array.isArray(value)) return value.map(canonical)
  if (value instanceof Uint8Array) return { binary: Buffer.from(value).toString('hex') }
  if (value !== null && typeof value === 'object') {
    if (value instanceof Y.AbstractType) return renderType(value)
    const out = {}
    for (const key of Object.keys(value).sort()) out[key] = canonical(value[key])
    return out
  }
  return value
}

function renderType (type) {
  if (type instanceof Y.XmlFragment || type instanceof Y.XmlElement) return { xml: type.toString() }
  if (type instanceof Y.Text) return { delta: canonical(type.toDelta()) }
  if (type instanceof Y.Map) {
    const out = {}
    for (const key of [...type.keys()].sort()) out[key] = canonical(type.get(key))
    return { map: out }
  }
  if (type instanceof Y.Array) return { array: type.toArray().map(canonical) }
  return { unknown: String(type) }
}

/** A canonical JSON rendering of every root type of the schema (formatting and embeds included). */
export function render (doc) {
  return JSON.stringify({
    text: renderType(doc.getText(ROOTS.text)),
    prosemirror: renderType(doc.getXmlFragment(ROOTS.xml)),
    meta: renderType(doc.getMap(ROOTS.map)),
    items: renderType(doc.getArray(ROOTS.array))
  })
}

export function stateVectorHex (doc) {
  return Buffer.from(Y.encodeStateVector(doc)).toString('hex')
}

// ------------------------------------------------- comparison of content, not of history

/**
 * Adjacent text inserts with equal attributes, merged. Two documents with the same text can
 * split it differently in `toDelta()`: a run ends at every formatting marker, even one that
 * changes nothing, and a restore writes its own markers. Replicas of one document agree on the
 * split (`render` compares them as is); a restored document and its version need not.
 */
function mergedDelta (delta) {
  const out = []
  for (const op of delta) {
    const prev = out.at(-1)
    const attrs = JSON.stringify(contentValue(op.attributes ?? {}))
    if (prev !== undefined && typeof prev.insert === 'string' && typeof op.insert === 'string' && prev.attrs === attrs) {
      prev.insert += op.insert
    } else {
      out.push({ insert: typeof op.insert === 'string' ? op.insert : contentValue(op.insert), attrs })
    }
  }
  return out.map(({ insert, attrs }) => attrs === '{}' ? { insert } : { insert, attributes: JSON.parse(attrs) })
}

function contentValue (value) {
  if (value instanceof Y.AbstractType) return contentType(value)
  if (Array.isArray(value)) return value.map(contentValue)
  if (value instanceof Uint8Array) return { binary: Buffer.from(value).toString('hex') }
  if (value !== null && typeof value === 'object') {
    const out = {}
    for (const key of Object.keys(value).sort()) out[key] = contentValue(value[key])
    return out
  }
  return value
}

function contentType (type) {
  if (type instanceof Y.XmlText) return { xmlText: mergedDelta(type.toDelta()) }
  if (type instanceof Y.XmlElement) {
    return { element: type.nodeName, attributes: contentValue(type.getAttributes()), children: type.toArray().map(contentType) }
  }
  if (type instanceof Y.XmlFragment) return { fragment: type.toArray().map(contentType) }
  if (type instanceof Y.Text) return { delta: mergedDelta(type.toDelta()) }
  if (type instanceof Y.Map) {
    const out = {}
    for (const key of [...type.keys()].sort()) out[key] = contentValue(type.get(key))
    return { map: out }
  }
  if (type instanceof Y.Array) return { array: type.toArray().map(contentValue) }
  return { unknown: String(type) }
}

/**
 * What a reader of the document sees, with the text runs merged (see `mergedDelta`): equal for
 * a restored document and its version, where `render` may still differ in how runs are split.
 */
export function renderContent (doc) {
  return JSON.stringify({
    text: contentType(doc.getText(ROOTS.text)),
    prosemirror: contentType(doc.getXmlFragment(ROOTS.xml)),
    meta: contentType(doc.getMap(ROOTS.map)),
    items: contentType(doc.getArray(ROOTS.array))
  })
}
