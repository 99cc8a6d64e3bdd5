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
