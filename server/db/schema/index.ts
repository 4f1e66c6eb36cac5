export * from './connections.ts'
export * from './mappings.ts'
