/**
 * The local App Station page (ui/dev), built apart from the panel into dist/dev so that a
 * production build (`npm run build`) never contains it. `npm run build:dev` builds both.
 */
import { defineConfig } from 'vite'
import { fileURLToPath } from 'node:url'

export default defineConfig({
  root: fileURLToPath(new URL('./ui/dev', import.meta.url)),
  base: './',
  build: {
    outDir: fileURLToPath(new URL('./dist/dev', import.meta.url)),
    emptyOutDir: true,
  },
})
