// Turns the server's version JSON into what the history panel shows: a version's text, and that
// text marked up with what changed since. Pure functions, so the unit tests cover them without a
// browser; the shapes are chorus-history's "Content JSON" and "Diff JSON" (its crate docs).

/** Shown for an embed (an image, a mention) inside text: the panel shows characters only. */
const EMBED = '\uFFFC'

/**
 * The characters of a `text` node's Quill-style delta; '' for a missing root (the server leaves
 * out roots without live content, so an emptied text has no entry).
 * @param {any} node
 * @returns {string}
 */
export function textOfNode (node) {
  if (node === undefined || node === null || !Array.isArray(node.delta)) return ''
  return node.delta.map((/** @type {any} */ run) => (typeof run.insert === 'string' ? run.insert : EMBED)).join('')
}

/**
 * @typedef {{ kind: 'same' | 'ins' | 'del', text: string }} Segment
 */

/**
 * `oldText` (the version's text) with the change of root `root` from the version to the
 * current document laid over it: runs kept as they are, inserted since (`ins`, text the
 * document has now and the version lacks) and deleted since (`del`). Formatting changes are
 * not shown: the panel compares characters.
 *
 * Positions in the diff count UTF-16 code units, as JavaScript strings do, so they index
 * `oldText` directly.
 * @param {string} oldText
 * @param {any} change the entry for the root in the diff's `roots`, or undefined when it is unchanged
 * @returns {Segment[]}
 */
export function diffSegments (oldText, change) {
  /** @type {Segment[]} */
  const out = []
  const push = (/** @type {Segment['kind']} */ kind, /** @type {string} */ text) => {
    if (text === '') return
    const last = out[out.length - 1]
    if (last !== undefined && last.kind === kind) last.text += text
    else out.push({ kind, text })
  }
  switch (change?.change) {
    case undefined:
      push('same', oldText)
      break
    case 'added':
      push('ins', textOfNode(change.value))
      break
    case 'removed':
      push('del', oldText)
      break
    case 'replaced':
      push('del', oldText)
      push('ins', textOfNode(change.after))
      break
    case 'edited': {
      let at = 0
      for (const op of Array.isArray(change.text) ? change.text : []) {
        if (op.op !== 'insert' && op.op !== 'delete') continue // formatting only
        const pos = Math.min(Math.max(at, Number(op.pos_a) || 0), oldText.length)
        push('same', oldText.slice(at, pos))
        if (op.op === 'insert') {
          push('ins', typeof op.text === 'string' ? op.text : EMBED.repeat(Number(op.len) || 1))
          at = pos
        } else {
          const end = Math.min(pos + (Number(op.len) || 0), oldText.length)
          push('del', oldText.slice(pos, end))
          at = end
        }
      }
      push('same', oldText.slice(at))
      break
    }
    default:
      push('same', oldText)
  }
  return out
}

/**
 * What the list says a version is: its label, else why it was made.
 * @param {{ label?: string, kind: string, restored_from?: string }} version
 * @returns {string}
 */
export function versionTitle (version) {
  if (version.label) return version.label
  if (version.kind === 'auto') return 'Saved automatically'
  if (version.kind === 'restored') return 'After a restore'
  return 'Saved version'
}

/**
 * An XML tree (Tiptap/ProseMirror: a fragment of blocks, paragraphs holding text) with its
 * change laid over it, as lines: one per textblock (an element whose children are text), each
 * a list of segments. Containers (lists, quotes) only contribute their blocks; formatting and
 * attribute changes are not shown.
 * @param {any} node the version's node, or undefined when the root was empty
 * @param {any} change its entry in the diff, or undefined when unchanged
 * @returns {Segment[][]}
 */
export function treeLines (node, change) {
  switch (change?.change) {
    case 'added': return linesOf(change.value, undefined, 'ins')
    case 'removed': return linesOf(node, undefined, 'del')
    case 'replaced': return [...linesOf(node, undefined, 'del'), ...linesOf(change.after, undefined, 'ins')]
    default: return linesOf(node, change, 'same')
  }
}

/**
 * @param {any} node
 * @param {any} change an `edited` change of this node, or undefined
 * @param {Segment['kind']} mark 'ins' or 'del' for a whole subtree added or removed
 * @returns {Segment[][]}
 */
function linesOf (node, change, mark) {
  if (node === undefined || node === null) return []
  if (node.kind === 'text' || node.kind === 'xml_text') return [inline(node, change, mark)]
  const children = childrenWithChanges(Array.isArray(node.children) ? node.children : [], change, mark)
  if (children.length > 0 && children.every(({ child }) => child?.kind === 'xml_text')) {
    return [children.flatMap(({ child, change, mark }) => inline(child, change, mark))]
  }
  return children.flatMap(({ child, change, mark }) => linesOf(child, change, mark))
}

/**
 * @param {any} node a text node
 * @param {any} change
 * @param {Segment['kind']} mark
 * @returns {Segment[]}
 */
function inline (node, change, mark) {
  if (mark !== 'same') return [{ kind: mark, text: textOfNode(node) }]
  return diffSegments(textOfNode(node), change)
}

/**
 * The old children in order, with the inserted ones placed where they go, each with its own
 * change (an element edited in place) or mark.
 * @param {any[]} old
 * @param {any} change
 * @param {Segment['kind']} mark
 * @returns {{ child: any, change: any, mark: Segment['kind'] }[]}
 */
function childrenWithChanges (old, change, mark) {
  if (mark !== 'same' || change?.change !== 'edited' || !Array.isArray(change.elements)) {
    return old.map(child => ({ child, change: undefined, mark }))
  }
  /** @type {{ child: any, change: any, mark: Segment['kind'] }[]} */
  const out = []
  let at = 0
  for (const op of change.elements) {
    const index = Math.min(Math.max(at, Number(op.index_a) || 0), old.length)
    for (; at < index; at++) out.push({ child: old[at], change: undefined, mark: 'same' })
    const values = Array.isArray(op.values) ? op.values : []
    if (op.op === 'insert') {
      for (const child of values) out.push({ child, change: undefined, mark: 'ins' })
    } else if (op.op === 'delete') {
      for (const end = Math.min(at + values.length, old.length); at < end; at++) out.push({ child: old[at], change: undefined, mark: 'del' })
    } else if (op.op === 'edit' && at < old.length) {
      out.push({ child: old[at], change: { change: 'edited', ...op.edits }, mark: 'same' })
      at++
    }
  }
  for (; at < old.length; at++) out.push({ child: old[at], change: undefined, mark: 'same' })
  return out
}

/**
 * Lines joined by newlines into one list of segments; a line wholly inserted or deleted takes
 * the newline before it with it (the first line has none).
 * @param {Segment[][]} lines
 * @returns {Segment[]}
 */
export function joinLines (lines) {
  /** @type {Segment[]} */
  const out = []
  const push = (/** @type {Segment} */ segment) => {
    const last = out[out.length - 1]
    if (last !== undefined && last.kind === segment.kind) last.text += segment.text
    else out.push({ ...segment })
  }
  lines.forEach((line, i) => {
    const kinds = new Set(line.map(s => s.kind))
    const whole = kinds.size === 1 && !kinds.has('same') ? line[0].kind : 'same'
    if (i > 0) push({ kind: whole, text: '\n' })
    line.forEach(push)
  })
  return out
}
