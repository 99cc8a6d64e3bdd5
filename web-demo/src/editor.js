// The CodeMirror editor bound to a shared Y.Text.
//
// Deliberately small: no language mode or autocompletion, which would triple the bundle for a demo
// whose point is the collaboration layer.

import { EditorState } from '@codemirror/state'
import { EditorView, keymap, drawSelection, highlightActiveLine, placeholder } from '@codemirror/view'
import { defaultKeymap } from '@codemirror/commands'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import * as Y from 'yjs'

// y-codemirror.next shows a remote user's name only while the mouse hovers their caret. In a
// shared editor you want to know at a glance who is typing where, so the label stays visible.
const alwaysShowNames = EditorView.theme({
  '.cm-ySelectionInfo': {
    opacity: 1,
    fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif',
    fontSize: '10.5px',
    fontWeight: '600',
    padding: '1px 4px',
    borderRadius: '4px 4px 4px 0',
    top: '-1.55em',
    letterSpacing: '0.01em'
  },
  '.cm-ySelectionCaret': { borderLeftWidth: '2px' },
  '.cm-ySelectionCaretDot': { display: 'none' }
})

/**
 * @param {HTMLElement} parent
 * @param {Y.Text} ytext
 * @param {import('y-protocols/awareness').Awareness} awareness
 * @returns {EditorView}
 */
export function createEditor (parent, ytext, awareness) {
  // Tracks only this tab's edits (yCollab's default origin filter), so undo never reverts a
  // collaborator's typing.
  const undoManager = new Y.UndoManager(ytext)
  return new EditorView({
    parent,
    state: EditorState.create({
      doc: ytext.toString(),
      extensions: [
        keymap.of([...yUndoManagerKeymap, ...defaultKeymap]),
        drawSelection(),
        highlightActiveLine(),
        EditorView.lineWrapping,
        placeholder('Start typing — everyone with the link sees it live.'),
        EditorView.contentAttributes.of({ 'aria-label': 'Shared document', spellcheck: 'true' }),
        yCollab(ytext, awareness, { undoManager }),
        alwaysShowNames
      ]
    })
  })
}
