// The Tiptap editor bound to the shared document, with everyone's carets, and its toolbar.

import { Editor } from '@tiptap/core'
import StarterKit from '@tiptap/starter-kit'
import Collaboration from '@tiptap/extension-collaboration'
import CollaborationCaret from '@tiptap/extension-collaboration-caret'

/**
 * @param {HTMLElement} element
 * @param {import('@hocuspocus/provider').HocuspocusProvider} provider
 * @param {import('../identity.js').User} user
 * @returns {Editor}
 */
export function createRichTextEditor (element, provider, user) {
  return new Editor({
    element,
    extensions: [
      // ProseMirror's own history would undo collaborators' typing too; Collaboration brings Yjs's
      // undo manager instead, which reverts only this tab's edits.
      StarterKit.configure({ undoRedo: false }),
      // The 'default' fragment is Tiptap's default, so any other Tiptap app opens the same text.
      Collaboration.configure({ document: provider.document, field: 'default' }),
      // It publishes `user` in the awareness state and draws everyone else's caret with their
      // name; it only accepts a `#rrggbb` colour, and writes the name as text, not HTML.
      CollaborationCaret.configure({ provider, user })
    ],
    editorProps: { attributes: { 'aria-label': 'Shared document', spellcheck: 'true' } }
  })
}

/**
 * Toolbar buttons: what each one runs, and which mark or node lights it up.
 * @type {{ label: string, title: string, active: [string, Record<string, unknown>?], run: (chain: any) => any }[]}
 */
const TOOLS = [
  { label: 'B', title: 'Bold (Ctrl+B)', active: ['bold'], run: chain => chain.toggleBold() },
  { label: 'I', title: 'Italic (Ctrl+I)', active: ['italic'], run: chain => chain.toggleItalic() },
  { label: 'S', title: 'Strikethrough (Ctrl+Shift+S)', active: ['strike'], run: chain => chain.toggleStrike() },
  { label: 'H2', title: 'Heading (Ctrl+Alt+2)', active: ['heading', { level: 2 }], run: chain => chain.toggleHeading({ level: 2 }) },
  { label: '• List', title: 'Bullet list (Ctrl+Shift+8)', active: ['bulletList'], run: chain => chain.toggleBulletList() },
  { label: '1. List', title: 'Numbered list (Ctrl+Shift+7)', active: ['orderedList'], run: chain => chain.toggleOrderedList() },
  { label: '❝', title: 'Quote (Ctrl+Shift+B)', active: ['blockquote'], run: chain => chain.toggleBlockquote() }
]

/**
 * Fills `toolbar` with formatting buttons that show what applies at the cursor.
 * @param {HTMLElement} toolbar
 * @param {Editor} editor
 */
export function createToolbar (toolbar, editor) {
  const buttons = TOOLS.map(tool => {
    const button = toolbar.ownerDocument.createElement('button')
    button.type = 'button'
    button.className = 'tool'
    button.textContent = tool.label
    button.title = tool.title
    button.setAttribute('aria-label', tool.title)
    // mousedown would move the focus out of the editor and lose the selection the tool acts on.
    button.addEventListener('mousedown', event => event.preventDefault())
    button.addEventListener('click', () => tool.run(editor.chain().focus()).run())
    toolbar.append(button)
    return { button, tool }
  })
  const refresh = () => {
    for (const { button, tool } of buttons) {
      button.setAttribute('aria-pressed', String(editor.isActive(...tool.active)))
    }
  }
  editor.on('transaction', refresh)
  refresh()
}
