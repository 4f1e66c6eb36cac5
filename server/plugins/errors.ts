/**
 * One error handler: deliberate errors keep their code and message, validation names the part at
 * fault, and anything unexpected becomes a 500 that shows no internals (the log keeps the detail).
 */
import fp from 'fastify-plugin'
import type { FastifyError } from 'fastify'
import { AppError } from '../lib/errors.ts'

interface Mapped {
  status: number
  code: string
  message: string
}

/**
 * The values a failed choice allows: an `enum`, or a union of constants (which fails as one
 * `const` error per branch at the same place, then `anyOf`).
 */
function allowedValues(err: FastifyError, instancePath: string): unknown[] | null {
  const here = (err.validation ?? []).filter((e) => e.instancePath === instancePath)
  const listed = here.find((e) => e.keyword === 'enum')
  if (listed) return (listed.params as { allowedValues?: unknown[] }).allowedValues ?? null
  const constants = here.filter((e) => e.keyword === 'const').map((e) => (e.params as { allowedValue?: unknown }).allowedValue)
  return constants.length > 1 && here.some((e) => e.keyword === 'anyOf') ? constants : null
}

function describeValidation(err: FastifyError): string {
  const first = err.validation?.[0]
  if (!first) return err.message
  const where = `${err.validationContext ?? 'body'}${first.instancePath.replace(/\//g, '.')}`
  const params = first.params
  if (first.keyword === 'additionalProperties') return `${where} has an unknown property "${String(params.additionalProperty)}"`
  if (first.keyword === 'required') return `${where} is missing "${String(params.missingProperty)}"`
  const allowed = first.keyword === 'const' || first.keyword === 'enum' ? allowedValues(err, first.instancePath) : null
  if (allowed) return `${where} must be one of: ${allowed.map(String).join(', ')}`
  return `${where} ${first.message ?? 'is invalid'}`
}

function mapError(err: FastifyError | AppError): Mapped {
  if (err instanceof AppError) return { status: err.statusCode, code: err.code, message: err.message }
  if (err.validation) return { status: 400, code: 'invalid_request', message: describeValidation(err) }
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return { status: 413, code: 'payload_too_large', message: 'The request body is larger than allowed.' }
  }
  if (err.code?.startsWith('FST_JWT_')) {
    return { status: 401, code: 'invalid_session', message: 'The session token is missing or not valid.' }
  }
  const status = err.statusCode ?? 500
  if (status >= 400 && status < 500) {
    const code = status === 415 ? 'unsupported_media_type' : status === 404 ? 'not_found' : 'bad_request'
    return { status, code, message: err.message }
  }
  return {
    status: 500,
    code: 'internal',
    message: 'Something went wrong on our side. The error has been logged; please try again.',
  }
}

export default fp(
  async (app) => {
    app.setErrorHandler((err: FastifyError, request, reply) => {
      const mapped = mapError(err)
      if (err instanceof AppError) reply.headers(err.headers)
      if (mapped.status >= 500) request.log.error({ err }, 'request failed')
      else request.log.info({ code: mapped.code, status: mapped.status }, mapped.message)
      const details = err instanceof AppError ? err.details : undefined
      return reply.status(mapped.status).send({ error: { ...details, code: mapped.code, message: mapped.message } })
    })
    app.setNotFoundHandler((request, reply) =>
      reply.status(404).send({
        error: { code: 'not_found', message: `Nothing at ${request.method} ${request.url.split('?')[0]}` },
      }),
    )
  },
  { name: 'errors' },
)
