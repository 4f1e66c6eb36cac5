/**
 * U+0000 (NUL) is refused wherever a request carries text: no id, name or value here needs it, and
 * PostgreSQL cannot store it in a text column, so without this a `%00` in a path id or a query, or
 * a NUL in a JSON body, would reach storage and fail there as a 500. The address is checked as it
 * arrives (`%00` is the only way to write a NUL in it), a parsed JSON body before validation.
 * Bodies read as bytes or streams (signed events, member files) are checked where they are read.
 */
import fp from 'fastify-plugin'
import { findNul } from '#shared/text.ts'
import { AppError } from '../lib/errors.ts'

export const NUL_CHARACTER = 'nul_character'

/** A body the JSON parser made (text, an array or a plain object), not a stream or a buffer. */
function isParsedJson(body: unknown): boolean {
  if (typeof body === 'string' || Array.isArray(body)) return true
  if (typeof body !== 'object' || body === null) return false
  const prototype = Object.getPrototypeOf(body) as unknown
  return prototype === Object.prototype || prototype === null
}

const refuse = (where: string) => new AppError(400, NUL_CHARACTER, `${where} holds a NUL character, which no value here may contain`)

/** The body's part at `path` as the validation messages name it: `body.events.x.tags[0].name`. */
const bodyPart = (path: string) => (path === '' ? 'body' : path.startsWith('[') ? `body${path}` : `body.${path}`)

export default fp(
  async (app) => {
    app.addHook('onRequest', async (request) => {
      if (/%00/i.test(request.url)) throw refuse('the request address (%00)')
    })
    app.addHook('preValidation', async (request) => {
      if (!isParsedJson(request.body)) return
      const path = findNul(request.body)
      if (path !== null) throw refuse(bodyPart(path))
    })
  },
  { name: 'nul-guard', dependencies: ['errors'] },
)
