import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../server/config.ts'
import { openDatabase } from '../server/db/index.ts'

const tempDir = () => mkdtempSync(join(tmpdir(), 'kit-at-rest-'))
const modeOf = (file: string) => statSync(file).mode & 0o777

function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.message
    throw err
  }
  throw new Error('loadConfig did not refuse')
}

describe('the database at rest', () => {
  it('creates the database file and its -wal and -shm files readable by the owner only', () => {
    const path = join(tempDir(), 'kit.sqlite')
    const { sqlite } = openDatabase(path)
    try {
      sqlite.prepare("INSERT INTO mappings (community_id, document, updated_at) VALUES ('c_1', '{}', 'now')").run()
      for (const file of [path, `${path}-wal`, `${path}-shm`]) {
        expect(existsSync(file), file).toBe(true)
        expect(modeOf(file), file).toBe(0o600)
      }
    } finally {
      sqlite.close()
    }
  })

  it('narrows a database file left readable by others', () => {
    const path = join(tempDir(), 'kit.sqlite')
    openDatabase(path).sqlite.close()
    chmodSync(path, 0o644)
    const { sqlite } = openDatabase(path)
    sqlite.close()
    expect(modeOf(path)).toBe(0o600)
  })
})

describe('the development secrets file', () => {
  const prepare = () => {
    const dir = tempDir()
    const databasePath = join(dir, 'kit.sqlite')
    loadConfig({ DATABASE_PATH: databasePath })
    return { databasePath, file: join(dir, 'secrets.json') }
  }

  it('is read when it is a regular file of this user with mode 0600', () => {
    const { databasePath, file } = prepare()
    const { config } = loadConfig({ DATABASE_PATH: databasePath })
    expect(config.jwtSecret).toBe(JSON.parse(readFileSync(file, 'utf8')).APPSTATION_JWT_SECRET)
  })

  it('is refused when it is a symbolic link', () => {
    const { databasePath, file } = prepare()
    const elsewhere = join(tempDir(), 'secrets.json')
    writeFileSync(elsewhere, readFileSync(file), { mode: 0o600 })
    const linked = join(tempDir(), 'kit.sqlite')
    symlinkSync(elsewhere, join(linked, '..', 'secrets.json'))
    expect(databasePath).not.toBe(linked)
    expect(refusal({ DATABASE_PATH: linked })).toMatch(/secrets\.json is a symbolic link/)
  })

  it('is refused when group or others can read it', () => {
    const { databasePath, file } = prepare()
    chmodSync(file, 0o640)
    expect(refusal({ DATABASE_PATH: databasePath })).toMatch(/secrets\.json can be read by group or others.*chmod 600/)
    chmodSync(file, 0o604)
    expect(refusal({ DATABASE_PATH: databasePath })).toMatch(/chmod 600/)
  })

  it.skipIf(process.getuid?.() !== 0)('is refused when another user owns it', () => {
    const { databasePath, file } = prepare()
    chownSync(file, 4242, 4242)
    expect(refusal({ DATABASE_PATH: databasePath })).toMatch(/secrets\.json is owned by another user \(uid 4242\)/)
  })
})
