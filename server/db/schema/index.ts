export * from './connections.ts'
export * from './mappings.ts'
export * from './pipeline.ts'
export * from './syncs.ts'
