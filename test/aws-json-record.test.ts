/**
 * The opt-in Kinesis JSON carrier on its own: where the context goes in the text, what is kept,
 * and what is left alone.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { PATHWAY_KEY, PathwayContext, encodePathwayContext } from '../bindings/index.js'
import { planJsonInjection, readJsonContext } from '../bindings/aws/json-record.js'

const now = Date.now()
const ctx = new PathwayContext(0x01020304, 0x05060708, now - 1000, now)
const encoded = encodePathwayContext(ctx)
const utf8 = (s: string) => new TextEncoder().encode(s)
const text = (data: Uint8Array | string) => (typeof data === 'string' ? data : new TextDecoder().decode(data))

/** The data written with the context, checking the announced size against the bytes written. */
function inject(data: Uint8Array | string): string {
  const plan = planJsonInjection(data)
  assert.ok(plan, `no injection planned for ${text(data)}`)
  const written = plan.write(encoded)
  assert.equal(typeof written, typeof data)
  assert.equal(plan.size, utf8(text(written)).length)
  return text(written)
}

describe('Kinesis JSON carrier', () => {
  test('adds `_datadog` as the last member, keeping the text around it byte for byte', () => {
    assert.equal(inject(utf8('{"a":1}')), `{"a":1,"_datadog":{"${PATHWAY_KEY}":"${encoded}"}}`)
    assert.equal(inject(utf8(' { }\n')), ` {"_datadog":{"${PATHWAY_KEY}":"${encoded}"} }\n`)
    const pretty = '{\n  "big": 123456789012345678901234567890,\n  "s": "a } b \\" c"\n}\n'
    assert.equal(inject(pretty), pretty.replace('"\n}', `","_datadog":{"${PATHWAY_KEY}":"${encoded}"}\n}`))
  })

  test("replaces the context in an existing `_datadog` and keeps the tracer's other keys there", () => {
    const data = `{"x":[1,{"_datadog":"nested"}],"_datadog":{"x-datadog-trace-id":"7","${PATHWAY_KEY}":"old"},"z":"}"}`
    const written = inject(utf8(data))
    const value = JSON.parse(written)
    assert.deepEqual(value._datadog, { 'x-datadog-trace-id': '7', [PATHWAY_KEY]: encoded })
    assert.deepEqual(value.x, [1, { _datadog: 'nested' }])
    assert.equal(value.z, '}')
    assert.equal(readJsonContext(utf8(written))?.hash, ctx.hash)
  })

  test('leaves data that is not a JSON object alone', () => {
    for (const data of [utf8('{"_datadog":"not ours"}'), utf8('[1]'), utf8('"{}"'), utf8('{"a":'), utf8('{ oops }'), Uint8Array.of(0x7b, 0xc3, 0x7d), utf8(''), 42, undefined]) {
      assert.equal(planJsonInjection(data), null, String(data))
      assert.equal(readJsonContext(data), null)
    }
  })

  test('reads no context from a JSON object without one, or with a malformed one', () => {
    assert.equal(readJsonContext(utf8('{"a":1}')), null)
    assert.equal(readJsonContext(utf8(`{"_datadog":{"${PATHWAY_KEY}":"not base64!"}}`)), null)
    assert.equal(readJsonContext(utf8('{"_datadog":"text"}')), null)
  })
})
