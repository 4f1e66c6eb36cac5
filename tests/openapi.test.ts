import { Validator } from '@seriousme/openapi-schema-validator'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestApp } from './helpers/app.ts'
import { auth, tokenFor } from './helpers/tokens.ts'

type Json = Record<string, unknown>
interface Operation {
  operationId?: string
  summary?: string
  parameters?: { name: string; in: string; required?: boolean; schema?: Json }[]
  requestBody?: { content: Record<string, { schema: Json }> }
  responses: Record<string, { description: string; content?: Record<string, { schema: Json }> }>
}

let app: FastifyInstance
let doc: { openapi: string; paths: Record<string, Record<string, Operation>> }

beforeAll(async () => {
  ;({ app } = await buildTestApp())
  const res = await app.inject({ method: 'GET', url: '/docs/openapi.json' })
  expect(res.statusCode).toBe(200)
  doc = res.json()
})
afterAll(() => app.close())

const operations = () =>
  Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, op })),
  )

describe('the OpenAPI description', () => {
  it('is a valid OpenAPI document', async () => {
    const validator = new Validator()
    const result = await validator.validate(doc)
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
  })

  it('gives every operation a unique operationId, a summary and real response descriptions', () => {
    const ids = new Set<string>()
    const problems: string[] = []
    for (const { name, op } of operations()) {
      if (!op.operationId) problems.push(`${name} has no operationId`)
      else if (ids.has(op.operationId)) problems.push(`${name} repeats operationId ${op.operationId}`)
      else ids.add(op.operationId)
      if (!op.summary) problems.push(`${name} has no summary`)
      for (const [status, response] of Object.entries(op.responses)) {
        if (!response.description || response.description === 'Default Response') problems.push(`${name} ${status} has no description`)
      }
    }
    expect(problems).toEqual([])
    expect(ids.size).toBeGreaterThanOrEqual(12)
  })

  it('documents POST /events: the event body, the three signature headers and every answer', () => {
    const op = doc.paths['/events']?.post
    expect(op).toBeDefined()
    const headers = Object.fromEntries((op!.parameters ?? []).filter((p) => p.in === 'header').map((p) => [p.name, p]))
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) expect(headers[name]?.required, name).toBe(true)
    const content = op!.requestBody?.content ?? {}
    expect(Object.keys(content).sort()).toEqual(['application/cloudevents+json', 'application/json'])
    const body = content['application/cloudevents+json']!.schema as { required: string[]; properties: Json }
    expect(body.required).toEqual(expect.arrayContaining(['specversion', 'id', 'source', 'type', 'communityid', 'data']))
    const member = ((body.properties.data as Json).properties as Json).member as { required: string[] }
    expect(member.required).toEqual(expect.arrayContaining(['id', 'email']))
    expect(Object.keys(op!.responses).sort()).toEqual(['200', '202', '400', '401', '413', '415', '429'])
  })

  it('documents the order parameter of GET /deliveries with its values', () => {
    const params = doc.paths['/api/v1/deliveries']?.get?.parameters ?? []
    const order = params.find((p) => p.name === 'order')
    expect(JSON.stringify(order?.schema)).toContain('oldest')
  })

  it('documents the column mapping of POST /syncs and the columns a refused file answers with', () => {
    const op = doc.paths['/api/v1/syncs']?.post
    const columns = (op?.parameters ?? []).find((p) => p.in === 'query' && p.name === 'columns')
    expect(columns?.schema?.type).toBe('string')
    expect(columns?.required ?? false).toBe(false)
    const refused = op?.responses['400']?.content?.['application/json']?.schema as { properties: { error: { properties: Json } } }
    expect(Object.keys(refused.properties.error.properties).sort()).toEqual(['code', 'columns', 'message'])
    const plan = op?.responses['200']?.content?.['application/json']?.schema as { properties: Json }
    expect(Object.keys(plan.properties)).toContain('columns')
  })

  it('still takes events without compiling a validator from the documented schema: a missing signature is 401', async () => {
    const res = await app.inject({ method: 'POST', url: '/events', headers: { 'content-type': 'application/json' }, payload: '{}' })
    expect(res.statusCode).toBe(401)
    expect(res.json().error.code).toBe('invalid_signature')
  })
})

describe('validation messages', () => {
  it('list the allowed values of an enumerated parameter', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/deliveries?status=done', headers: auth(tokenFor('c_alpha')) })
    expect(res.statusCode).toBe(400)
    expect(res.json().error.message).toBe('querystring.status must be one of: pending, succeeded, retrying, failed, skipped')
  })
})
