export type UiBuildState = 'ok' | 'missing' | 'old_layout' | 'stale'
export declare const UI_SOURCES: readonly string[]
export declare function newestChange(path: string): number
export declare function uiBuildState(options?: { root?: string; devHost?: boolean }): UiBuildState
