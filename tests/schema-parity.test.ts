/**
 * The embedded (SQLite) and shared (PostgreSQL) schemas stay the same: the same tables, columns,
 * nullability, defaults, primary keys and indexes, both as declared in drizzle and as the migrations
 * build them in real databases; and the committed migrations are what drizzle-kit would generate.
 */
import { execFile } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { is } from 'drizzle-orm'
import { getTableConfig as pgTableConfig, PgTable } from 'drizzle-orm/pg-core'
import { getTableConfig as sqliteTableConfig, SQLiteTable } from 'drizzle-orm/sqlite-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openDatabase } from '../server/db/index.ts'
import * as pgSchema from '../server/db/pg-schema/index.ts'
import { openPostgres, type OpenedPostgres } from '../server/db/postgres.ts'
import * as sqliteSchema from '../server/db/schema/index.ts'
import { createTestDatabase, postgresAvailable, type TestDatabase } from './helpers/postgres.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** What both dialects must agree on for one table, in a form `toEqual` compares. */
interface TableShape {
  columns: Record<string, { notNull: boolean; default: unknown }>
  primaryKey: string[]
  indexes: Record<string, { columns: string[]; unique: boolean; partial: boolean }>
}

type Shapes = Record<string, TableShape>

type AnyTableConfig = ReturnType<typeof sqliteTableConfig> | ReturnType<typeof pgTableConfig>

function shapeOf(config: AnyTableConfig): TableShape {
  const columns: TableShape['columns'] = {}
  for (const c of config.columns) columns[c.name] = { notNull: c.notNull, default: c.default }
  const composite = config.primaryKeys[0]
  const primaryKey = composite ? composite.columns.map((c) => c.name) : config.columns.filter((c) => c.primary).map((c) => c.name)
  const indexes: TableShape['indexes'] = {}
  for (const index of config.indexes) {
    const { name, unique, where } = index.config
    const indexed = index.config.columns.map((c) => ('name' in c && typeof c.name === 'string' ? c.name : JSON.stringify(c)))
    indexes[name ?? '(unnamed)'] = { columns: indexed, unique: unique ?? false, partial: where !== undefined }
  }
  return { columns, primaryKey, indexes }
}

function declaredSqlite(): Shapes {
  const shapes: Shapes = {}
  for (const value of Object.values(sqliteSchema)) {
    if (is(value, SQLiteTable)) {
      const config = sqliteTableConfig(value)
      shapes[config.name] = shapeOf(config)
    }
  }
  return shapes
}

function declaredPostgres(): Shapes {
  const shapes: Shapes = {}
  for (const value of Object.values(pgSchema)) {
    if (is(value, PgTable)) {
      const config = pgTableConfig(value)
      shapes[config.name] = shapeOf(config)
    }
  }
  return shapes
}

/** A real database's tables: column → nullable, primary key columns in order, index names. */
interface BuiltTable {
  columns: Record<string, { nullable: boolean }>
  primaryKey: string[]
  indexes: string[]
}

type Built = Record<string, BuiltTable>

function builtSqlite(path: string): Built {
  const { sqlite } = openDatabase(path)
  try {
    const tables = sqlite
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '__drizzle_migrations'`)
      .pluck()
      .all() as string[]
    const built: Built = {}
    for (const table of tables) {
      const info = sqlite.prepare('SELECT name, "notnull", pk FROM pragma_table_info(?)').all(table) as {
        name: string
        notnull: number
        pk: number
      }[]
      const indexes = sqlite
        .prepare(
          `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND name NOT LIKE 'sqlite_autoindex_%' ORDER BY name`,
        )
        .pluck()
        .all(table) as string[]
      built[table] = {
        columns: Object.fromEntries(info.map((c) => [c.name, { nullable: c.notnull === 0 }])),
        primaryKey: info
          .filter((c) => c.pk > 0)
          .sort((a, b) => a.pk - b.pk)
          .map((c) => c.name),
        indexes,
      }
    }
    return built
  } finally {
    sqlite.close()
  }
}

async function builtPostgres({ pool }: OpenedPostgres): Promise<Built> {
  const columns = await pool.query<{ table_name: string; column_name: string; is_nullable: string }>(
    `SELECT table_name, column_name, is_nullable FROM information_schema.columns WHERE table_schema = 'public'`,
  )
  const keys = await pool.query<{ table_name: string; column_name: string }>(
    `SELECT k.table_name, k.column_name
       FROM information_schema.table_constraints t
       JOIN information_schema.key_column_usage k
         ON k.constraint_schema = t.constraint_schema AND k.constraint_name = t.constraint_name
      WHERE t.table_schema = 'public' AND t.constraint_type = 'PRIMARY KEY'
      ORDER BY k.table_name, k.ordinal_position`,
  )
  // Indexes other than those PostgreSQL makes for primary keys (SQLite's are its autoindexes).
  const indexes = await pool.query<{ table_name: string; index_name: string }>(
    `SELECT t.relname AS table_name, i.relname AS index_name
       FROM pg_index x
       JOIN pg_class i ON i.oid = x.indexrelid
       JOIN pg_class t ON t.oid = x.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = 'public' AND NOT x.indisprimary
      ORDER BY i.relname`,
  )
  const built: Built = {}
  const table = (name: string) => (built[name] ??= { columns: {}, primaryKey: [], indexes: [] })
  for (const c of columns.rows) table(c.table_name).columns[c.column_name] = { nullable: c.is_nullable === 'YES' }
  for (const k of keys.rows) table(k.table_name).primaryKey.push(k.column_name)
  for (const i of indexes.rows) table(i.table_name).indexes.push(i.index_name)
  return built
}

const pgUp = await postgresAvailable()

describe('the declared schemas', () => {
  const sqlite = declaredSqlite()
  const postgres = declaredPostgres()

  it('declare the same tables', () => {
    expect(Object.keys(sqlite).length).toBeGreaterThan(0)
    expect(Object.keys(postgres).sort()).toEqual(Object.keys(sqlite).sort())
  })

  it.each(Object.keys(sqlite).sort())('declare %s with the same columns, nullability, defaults, primary key and indexes', (name) => {
    expect(postgres[name]).toEqual(sqlite[name])
  })
})

describe('the migrated databases', () => {
  let dir: string
  let sqliteBuilt: Built
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kit-parity-'))
    sqliteBuilt = builtSqlite(join(dir, 'kit.db'))
  })
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true })
  })

  it('build in SQLite the tables and columns the schema declares', () => {
    const declared = declaredSqlite()
    expect(Object.keys(sqliteBuilt).sort()).toEqual(Object.keys(declared).sort())
    for (const [name, table] of Object.entries(declared)) {
      expect(Object.keys(sqliteBuilt[name]?.columns ?? {}).sort(), name).toEqual(Object.keys(table.columns).sort())
    }
  })

  describe.skipIf(!pgUp)('on PostgreSQL', () => {
    let database: TestDatabase
    let opened: OpenedPostgres | undefined
    let postgresBuilt: Built
    beforeAll(async () => {
      database = await createTestDatabase('kitparity')
      opened = await openPostgres(database.url, { poolSize: 2 })
      postgresBuilt = await builtPostgres(opened)
    })
    afterAll(async () => {
      await opened?.pool.end()
      await database?.drop()
    })

    it('build the same tables as SQLite, drizzle’s own migrations table aside', () => {
      expect(Object.keys(postgresBuilt).length).toBeGreaterThan(0)
      expect(Object.keys(postgresBuilt).sort()).toEqual(Object.keys(sqliteBuilt).sort())
    })

    it('build every table with the same columns, nullability, primary key and index names as SQLite', () => {
      for (const name of Object.keys(sqliteBuilt)) {
        expect(postgresBuilt[name], name).toEqual(sqliteBuilt[name])
      }
    })
  })
})

const run = promisify(execFile)
const DRIZZLE_KIT = join(ROOT, 'node_modules', '.bin', 'drizzle-kit')

/** Every file under `dir`, relative to it, with its content. */
function filesOf(dir: string): Record<string, string> {
  const files: Record<string, string> = {}
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const path = join(entry.parentPath, entry.name)
    files[relative(dir, path)] = readFileSync(path, 'utf8')
  }
  return files
}

describe('the committed migrations', () => {
  let scratch: string
  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'kit-migrations-'))
  })
  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true })
  })

  it.each([
    { dialect: 'sqlite', schema: 'server/db/schema/index.ts', folder: 'migrations/sqlite' },
    { dialect: 'postgresql', schema: 'server/db/pg-schema/index.ts', folder: 'migrations/postgres' },
  ])(
    'are what drizzle-kit generates from the $dialect schema (run `npm run db:generate` if not)',
    async ({ dialect, schema, folder }) => {
      const copy = join(scratch, dialect)
      cpSync(join(ROOT, folder), copy, { recursive: true })
      const before = filesOf(copy)
      // drizzle-kit reads `--out` as relative to the working directory, even when it is absolute.
      await run(
        DRIZZLE_KIT,
        ['generate', `--dialect=${dialect}`, `--schema=./${schema}`, `--out=./${relative(ROOT, copy)}`, '--casing=snake_case'],
        { cwd: ROOT, timeout: 60_000, env: { ...process.env, CI: '1' } },
      )
      const after = filesOf(copy)
      expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort())
      expect(after).toEqual(before)
    },
    90_000,
  )
})
