import { defineConfig } from 'vitest/config'
import vue from '@vitejs/plugin-vue'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('./ui', import.meta.url))

export default defineConfig({
  root,
  base: './',
  plugins: [vue()],
  // Every component is <script setup>: the runtime's Options API support would only add weight.
  define: { __VUE_OPTIONS_API__: 'false' },
  build: {
    outDir: fileURLToPath(new URL('./dist/ui', import.meta.url)),
    emptyOutDir: true,
    // The panel's page links one script and no module preloads: the preload polyfill would only add weight.
    modulePreload: false,
    // The favicon stays a file: a data: URL would need img-src data: in the panel's policy.
    assetsInlineLimit: (file) => (file.endsWith('.svg') ? false : undefined),
    // The panel only: the local App Station page is built apart (vite.dev.config.ts, npm run build:dev).
    rollupOptions: {
      input: {
        panel: fileURLToPath(new URL('./ui/panel/index.html', import.meta.url)),
      },
    },
  },
  test: {
    root: fileURLToPath(new URL('.', import.meta.url)),
    projects: [
      {
        extends: true,
        test: {
          name: 'server',
          include: ['tests/**/*.test.ts'],
          exclude: ['tests/ui/**', 'tests/browser/**'],
          environment: 'node',
          testTimeout: 20000,
        },
      },
      {
        extends: true,
        test: {
          name: 'ui',
          include: ['tests/ui/**/*.test.ts'],
          environment: 'happy-dom',
          // A section's chunk is compiled the first time a test shows it.
          testTimeout: 15000,
        },
      },
      {
        extends: true,
        test: {
          name: 'browser',
          include: ['tests/browser/**/*.test.ts'],
          globalSetup: ['tests/browser/global-setup.ts'],
          environment: 'node',
          testTimeout: 60000,
          hookTimeout: 120000,
          fileParallelism: false,
        },
      },
    ],
  },
})
