import { readdirSync } from 'node:fs'

/** How many migrations a folder holds (what a database must have applied to be ready). */
export const migrationCount = (folder: string): number => readdirSync(folder).filter((f) => f.endsWith('.sql')).length
