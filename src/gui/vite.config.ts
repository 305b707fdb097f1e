import { fileURLToPath } from 'node:url'
import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

const guiDir = fileURLToPath(new URL('.', import.meta.url))
// The core the dev server forwards API calls to (`npx vite --config src/gui/vite.config.ts`).
const coreUrl = process.env.TRIBLER_CORE_URL ?? 'http://127.0.0.1:8085'
const apiPaths = [
  '/state',
  '/shutdown',
  '/events',
  '/settings',
  '/downloads',
  '/torrentinfo',
  '/debug',
  '/ui/upload',
]

/** Builds the web GUI into `dist/gui`, which the core serves at `/ui/`. */
export default defineConfig({
  root: guiDir,
  base: '/ui/',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('../../dist/gui', import.meta.url)),
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 800,
  },
  server: {
    host: '127.0.0.1',
    proxy: Object.fromEntries(apiPaths.map((p) => [p, { target: coreUrl, changeOrigin: false }])),
  },
})
