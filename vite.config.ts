import { defineConfig } from 'vitest/config'
import type { Plugin } from 'vite'
import vue from '@vitejs/plugin-vue'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('./ui', import.meta.url))

/**
 * Pinia carries FileSaver for its devtools' "export state"; the panel never calls it, but its `saveAs`
 * constant is chosen at load time by reading browser globals, so the bundler must keep all of it
 * (about 1 KiB gzipped on the first screen). Marking that one initializer pure lets it go.
 */
function piniaWithoutFileSaver(): Plugin {
  return {
    name: 'kit:pinia-without-filesaver',
    apply: 'build',
    transform: {
      filter: { id: /[\\/]pinia[\\/]dist[\\/]pinia\.mjs$/ },
      handler(code) {
        const start = code.indexOf('const saveAs = !IS_CLIENT')
        const end = start < 0 ? -1 : code.indexOf('fileSaverSaveAs;', start)
        if (end < 0) {
          this.warn("pinia's saveAs was not found: its FileSaver stays in the panel")
          return null
        }
        const init = code.slice(start + 'const saveAs = '.length, end + 'fileSaverSaveAs'.length)
        return {
          code: `${code.slice(0, start)}const saveAs = /* @__PURE__ */ (() => ${init})();${code.slice(end + 'fileSaverSaveAs;'.length)}`,
          map: null,
        }
      },
    },
  }
}

/**
 * Vite wraps every `import()` in a helper that first loads the chunk's stylesheets and announces a
 * failure as `vite:preloadError`. The panel's stylesheet is one file linked by the page (cssCodeSplit
 * off), so no chunk has a stylesheet of its own, and nothing listens for that event (a section that
 * cannot be fetched says so itself, with Try again): the helper is only weight, and `import()` is called as it is.
 */
function importWithoutPreloadHelper(): Plugin {
  return {
    name: 'kit:import-without-preload-helper',
    apply: 'build',
    enforce: 'pre',
    load: {
      filter: { id: /^\0vite\/preload-helper\.js$/ },
      handler: () => 'export const __vitePreload = (load) => load()',
    },
  }
}

export default defineConfig({
  root,
  base: './',
  plugins: [vue(), piniaWithoutFileSaver(), importWithoutPreloadHelper()],
  // Every component is <script setup>: the runtime's Options API support would only add weight.
  define: { __VUE_OPTIONS_API__: 'false' },
  build: {
    outDir: fileURLToPath(new URL('./dist/ui', import.meta.url)),
    emptyOutDir: true,
    // The panel's page links one script and no module preloads: the preload polyfill would only add weight.
    modulePreload: false,
    // The favicon stays a file: a data: URL would need img-src data: in the panel's policy.
    assetsInlineLimit: (file) => (file.endsWith('.svg') ? false : undefined),
    // One stylesheet for the whole panel, linked by the page: the on-demand sections' few scoped rules
    // cost less in it than as a file of their own (and spare every section fetch a stylesheet to wait for).
    cssCodeSplit: false,
    // The panel only: the local App Station page is built apart (vite.dev.config.ts, npm run build:dev).
    rollupOptions: {
      input: {
        panel: fileURLToPath(new URL('./ui/panel/index.html', import.meta.url)),
      },
      output: {
        // Two scripts: what the first screen runs (Connection, the tabs, Vue, Pinia), and every section
        // fetched on demand in one chunk, fetched the first time any of them is needed. Compressed apart,
        // a dozen small chunks repeated their imports and compressed without each other's context.
        codeSplitting: {
          groups: [
            { name: 'panel', tags: ['$initial'], priority: 2 },
            { name: 'sections', test: /[\\/](ui[\\/]src|shared)[\\/]/, priority: 1 },
          ],
        },
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
