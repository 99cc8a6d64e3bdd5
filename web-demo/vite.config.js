import { defineConfig } from 'vite'

// `npm run dev` proxies /ws to a running `chorus serve`, so the page's same-origin URL works
// in development exactly as it does when the server hosts dist/.
const chorus = process.env.CHORUS_URL ?? 'http://127.0.0.1:1234'

export default defineConfig({
  // Relative asset URLs: dist/ works wherever it is mounted, not only at the site root.
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // The bundle is one editor plus Yjs; a warning above this means something heavy crept in.
    chunkSizeWarningLimit: 600
  },
  server: {
    proxy: { '/ws': { target: chorus, ws: true } }
  }
})
