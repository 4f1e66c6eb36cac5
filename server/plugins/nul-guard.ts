/**
 * U+0000 (NUL) is refused wherever a request carries text: no id, name or value here needs it, and
 * PostgreSQL cannot store it in a text column, so without this a `%00` in a path id or a query, or
 * a NUL in a JSON body, would reach storage and fail there as a 500. The address is checked as it
 * arrives (`%00` is the only way to write a NUL in it), a parsed JSON body before validation.
 * Bodies read as bytes or streams (signed events, member files) are checked where they are read.
 */
import fp from 'fastify-plugin'
import { holdsNul } from '#shared/text.ts'
import { AppError } from '../lib/errors.ts'

export const NUL_CHARACTER = 'nul_character'

/** A body the JSON parser made (text, an array or a plain object), not a stream or a buffer. */
function isParsedJson(body: unknown): boolean {
  if (typeof body === 'string' || Array.isArray(body)) return true
  if (typeof body !== 'object' || body === null) return false
  const prototype = Object.getPrototypeOf(body) as unknown
  return prototype === Object.prototype || prototype === null
}

const refuse = (where: string) =>
  new AppError(400, NUL_CHARACTER, `The request ${where} holds a NUL character (%00 or \\u0000), which no value here may contain.`)

export default fp(
  async (app) => {
    app.addHook('onRequest', async (request) => {
      if (/%00/i.test(request.url)) throw refuse('address')
    })
    app.addHook('preValidation', async (request) => {
      if (isParsedJson(request.body) && holdsNul(request.body)) throw refuse('body')
    })
  },
  { name: 'nul-guard', dependencies: ['errors'] },
)
