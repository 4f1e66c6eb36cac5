/** Size limits server and panel both apply (kept apart from the API schemas, so the panel needs no schema library). */
export const LIMITS = {
  tagNameMax: 255,
  tagsPerList: 50,
  listsPerEvent: 50,
  fieldMappingsMax: 100,
  apiKeyMax: 200,
  rulesPerEvent: 20,
} as const
