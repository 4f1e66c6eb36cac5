/** An epoch-millisecond time as ISO-8601 text, the form the API and the text time columns use. */
export const iso = (ms: number) => new Date(ms).toISOString()
