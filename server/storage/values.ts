/** The keys of `values` that are set: a Partial may carry `undefined`, which means "leave as is". */
export function definedOnly<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<T>
}
