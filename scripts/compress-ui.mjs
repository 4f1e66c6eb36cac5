// Part of npm run build: writes .br and .gz beside each built asset so the server can send them
// precompressed (the panel's weight budget is counted gzipped; the wire should match).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'

const dir = 'dist/ui/assets'
for (const name of readdirSync(dir)) {
  if (!/\.(js|css|svg)$/.test(name)) continue
  const file = join(dir, name)
  const content = readFileSync(file)
  writeFileSync(`${file}.gz`, gzipSync(content, { level: 9 }))
  writeFileSync(`${file}.br`, brotliCompressSync(content, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }))
}
