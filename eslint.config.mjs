// Lint rules for the whole repository: the type-checked TypeScript set, the Vue set for the panel,
// and nothing that formatting decides (Prettier owns layout). `npm run lint [paths…]` runs it.
import { defineConfig } from 'eslint/config'
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import vue from 'eslint-plugin-vue'
import prettier from 'eslint-config-prettier'
import globals from 'globals'

export default defineConfig(
  { ignores: ['dist/', 'migrations/', 'coverage/', 'data/', '**/node_modules/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  vue.configs['flat/recommended'],
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
        extraFileExtensions: ['.vue'],
      },
    },
  },
  {
    rules: {
      // Fastify plugins and routes are declared async by contract, and SQLite's synchronous driver
      // meets the async storage ports with async methods: "async without await" is the design here.
      '@typescript-eslint/require-await': 'off',
      // `_name` marks a parameter or binding kept on purpose; a rest sibling drops fields from a copy.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    files: ['tests/**'],
    rules: {
      // Tests read response bodies (`res.json()`) and matchers (`expect.any`) typed any by their
      // libraries; the assertion on them is the type check, so the any-flow rules only add noise.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      // `expect(mock.method)` hands a spy to an assertion; it is never called unbound.
      '@typescript-eslint/unbound-method': 'off',
      // `res.json() as {…}` names the shape a test then asserts; light-my-request's generic spelling says no more.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // Refusal tests build deliberately malformed documents and envelopes, which no declared type admits.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: ['**/*.vue'],
    languageOptions: { parserOptions: { parser: tseslint.parser } },
  },
  {
    files: ['ui/**'],
    languageOptions: { globals: globals.browser },
  },
  {
    // Plain JavaScript (build and start scripts) is outside the TypeScript project.
    files: ['**/*.mjs', '**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  prettier,
)
