import { defineConfig } from 'drizzle-kit'

/** The shared dialect (several instances on PostgreSQL). */
export default defineConfig({
  dialect: 'postgresql',
  schema: './server/db/pg-schema/index.ts',
  out: './migrations/postgres',
  casing: 'snake_case',
})
