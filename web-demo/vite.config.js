import { defineConfig } from 'vite'

// `npm run dev` proxies /ws, /hocuspocus and /api to a running `chorus serve`, so the pages' same-origin
// URLs work in development exactly as they do when the server hosts dist/.
const chorus = process.env.CHORUS_URL ?? 'http://127.0.0.1:1234'

export default defineConfig({
  // Relative asset URLs: dist/ works wherever it is mounted, not only at the site root.
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Two pages: the CodeMirror editor over y-websocket, the Tiptap one over Hocuspocus.
    rollupOptions: {
      input: { main: 'index.html', tiptap: 'tiptap.html' }
    },
    // Each page is one editor plus Yjs; a warning above this means something heavy crept in.
    chunkSizeWarningLimit: 600
  },
  server: {
    proxy: {
      '/ws': { target: chorus, ws: true },
      '/hocuspocus': { target: chorus, ws: true },
      // The history panel's HTTP calls.
      '/api': { target: chorus }
    }
  }
})
