import { defineConfig } from 'drizzle-kit'

/** The embedded dialect. `npm run db:generate` writes both dialects' migrations. */
export default defineConfig({
  dialect: 'sqlite',
  schema: './server/db/schema/index.ts',
  out: './migrations/sqlite',
  casing: 'snake_case',
})
