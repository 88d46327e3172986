/**
 * The pathway context codec: round trips, interoperability with dd-trace's own codec both ways,
 * the legacy raw key, and fuzzing: decoding never throws, whatever arrives.
 */
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  LEGACY_PATHWAY_KEY,
  PATHWAY_KEY,
  PathwayContext,
  decodePathwayContext,
  decodePathwayContextBytes,
  encodePathwayContext,
  encodePathwayContextBytes,
  extractPathwayContext,
} from '../bindings/pathway/context.js'
import { MAX_AHEAD_MS, MIN_TIME_MS } from '../bindings/pathway/time-window.js'

const require = createRequire(import.meta.url)
const ddPathway = require('dd-trace/packages/dd-trace/src/datastreams/pathway.js') as {
  encodePathwayContextBase64(ctx: { hash: Buffer; pathwayStartNs: number; edgeStartNs: number }): string
  decodePathwayContextBase64(value: string): { hash: Buffer; pathwayStartNs: number; edgeStartNs: number } | null
}

const u32 = fc.integer({ min: 0, max: 0xffffffff })
/** Milliseconds since the epoch inside the sane window: from 2000 to an hour from now (minus the .75 added below). */
const ms = fc.integer({ min: MIN_TIME_MS, max: Date.now() + MAX_AHEAD_MS - 1 })
/** Outside it: before 2000, or further ahead (to about 2255). */
const insaneMs = fc.oneof(fc.integer({ min: 0, max: MIN_TIME_MS - 1 }), fc.integer({ min: Date.now() + 2 * MAX_AHEAD_MS, max: 9_000_000_000_000 }))
/** dd-trace writes its context into a fixed 20 bytes, which timestamps after 2039 would overflow: the window ends well before. */
const ddMs = fc.integer({ min: MIN_TIME_MS, max: Date.now() })
const hashOf = (ctx: PathwayContext) => ctx.hash

describe('pathway context codec', () => {
  test('a context round-trips through its header value, 28 characters for today', () => {
    fc.assert(
      fc.property(u32, u32, ms, ms, (hi, lo, pathwayStart, edgeStart) => {
        const ctx = new PathwayContext(hi, lo, pathwayStart + 0.75, edgeStart + 0.25)
        const decoded = decodePathwayContext(encodePathwayContext(ctx))!
        assert.deepEqual([decoded.hashHi, decoded.hashLo, decoded.pathwayStartMs, decoded.edgeStartMs], [hi, lo, pathwayStart, edgeStart])
        assert.deepEqual(decodePathwayContextBytes(encodePathwayContextBytes(ctx)), decoded)
      }),
      { numRuns: 2000 },
    )
    const now = Date.now()
    assert.equal(encodePathwayContext(new PathwayContext(1, 2, now, now)).length, 28)
  })

  test('a time outside the window is never encoded', () => {
    fc.assert(
      fc.property(u32, u32, insaneMs, ms, fc.boolean(), (hi, lo, bad, good, first) => {
        const ctx = first ? new PathwayContext(hi, lo, bad, good) : new PathwayContext(hi, lo, good, bad)
        assert.equal(encodePathwayContext(ctx), '')
        assert.equal(encodePathwayContextBytes(ctx).length, 0)
      }),
      { numRuns: 2000 },
    )
  })

  test('the value decodes from the Buffer of its text, as Kafka delivers header values', () => {
    const ctx = new PathwayContext(0xdeadbeef, 0x01020304, 1_764_000_000_123, 1_764_000_000_456)
    assert.deepEqual(decodePathwayContext(Buffer.from(encodePathwayContext(ctx))), decodePathwayContext(encodePathwayContext(ctx)))
  })

  test('values written by pathwise decode with dd-trace, and values written by dd-trace decode with pathwise', () => {
    fc.assert(
      fc.property(u32, u32, ddMs, ddMs, (hi, lo, pathwayStart, edgeStart) => {
        const ours = new PathwayContext(hi, lo, pathwayStart, edgeStart)
        const theirs = ddPathway.decodePathwayContextBase64(encodePathwayContext(ours))!
        assert.equal(theirs.hash.readBigUInt64LE(0), hashOf(ours))
        assert.equal(theirs.pathwayStartNs, pathwayStart * 1e6)
        assert.equal(theirs.edgeStartNs, edgeStart * 1e6)

        const hash = Buffer.alloc(8)
        hash.writeBigUInt64LE(hashOf(ours))
        const written = ddPathway.encodePathwayContextBase64({ hash, pathwayStartNs: pathwayStart * 1e6, edgeStartNs: edgeStart * 1e6 })
        const back = decodePathwayContext(written)!
        assert.deepEqual([back.hashHi, back.hashLo, back.pathwayStartMs, back.edgeStartMs], [hi, lo, pathwayStart, edgeStart])
      }),
      { numRuns: 2000 },
    )
  })

  test('a carrier is read by the base64 key first, then the legacy raw key; a repeated header reads its last value', () => {
    const now = Date.now()
    const a = new PathwayContext(0, 1, now - 4000, now - 3000)
    const b = new PathwayContext(0, 2, now - 2000, now - 1000)
    assert.equal(extractPathwayContext({ [PATHWAY_KEY]: encodePathwayContext(a) })!.hashLo, 1)
    assert.equal(extractPathwayContext({ [LEGACY_PATHWAY_KEY]: Buffer.from(encodePathwayContextBytes(b)) })!.hashLo, 2)
    assert.equal(extractPathwayContext({ [LEGACY_PATHWAY_KEY]: Buffer.from(encodePathwayContextBytes(b)).toString('latin1') })!.hashLo, 2)
    assert.equal(extractPathwayContext({ [PATHWAY_KEY]: encodePathwayContext(a), [LEGACY_PATHWAY_KEY]: encodePathwayContextBytes(b) })!.hashLo, 1)
    assert.equal(extractPathwayContext({ [PATHWAY_KEY]: [encodePathwayContext(a), Buffer.from(encodePathwayContext(b))] })!.hashLo, 2)
    assert.equal(extractPathwayContext({}), null)
    assert.equal(extractPathwayContext(null), null)
    assert.equal(extractPathwayContext('not a carrier'), null)
  })

  test('malformed values mean no context', () => {
    const valid = encodePathwayContext(new PathwayContext(1, 2, 1_764_000_000_000, 1_764_000_000_000))
    for (const bad of ['', '====', 'AAAA', valid.slice(0, 12), valid + valid, valid.replace('A', '*'), '😀😀😀😀', 'A'.repeat(37), null, undefined, 42, {}, [valid]]) {
      assert.equal(decodePathwayContext(bad), null, JSON.stringify(bad))
    }
    // A varint that never ends, and one longer than 9 bytes.
    assert.equal(decodePathwayContextBytes(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 0x80, 0x80, 0x80])), null)
    assert.equal(decodePathwayContextBytes(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, ...Array(10).fill(0x81), 0x01, 0x02])), null)
  })

  test('a lookalike context whose hash halves are objects is never encoded, and they are never converted', () => {
    let conversions = 0
    const converts = () => ({
      valueOf: () => ++conversions,
      toString: () => String(++conversions),
    })
    // Converting a sparse array joins its 2^32 - 1 holes (minutes); past the first million, an element that counts a read and ends the join.
    const holes = () => {
      const a: unknown[] = []
      a.length = 2 ** 32 - 1
      Object.defineProperty(a, 1_000_001, {
        get: () => {
          throw new Error(`read ${++conversions}`)
        },
      })
      return a
    }
    const now = Date.now()
    const valid = { hashHi: 1, hashLo: 2, pathwayStartMs: now, edgeStartMs: now, direction: 0, oppositeHashHi: 0, oppositeHashLo: 0, oppositeEdgeStartMs: now }
    assert.notEqual(encodePathwayContext(valid as never), '', 'the lookalike with numbers encodes')
    for (const key of ['hashHi', 'hashLo', 'oppositeHashHi', 'oppositeHashLo']) {
      for (const bad of [converts(), holes()]) {
        assert.equal(encodePathwayContext({ ...valid, [key]: bad } as never), '', key)
        assert.equal(encodePathwayContextBytes({ ...valid, [key]: bad } as never).length, 0, key)
      }
    }
    assert.equal(conversions, 0)
  })

  test("today's 28 characters, written and read straight from their numbers, are what the general codec gives", () => {
    // The general codec: the raw bytes (encodePathwayContextBytes, decodePathwayContextBytes) and Node's base64.
    fc.assert(
      fc.property(u32, u32, ms, ms, (hi, lo, pathwayStart, edgeStart) => {
        const ctx = new PathwayContext(hi, lo, pathwayStart + 0.5, edgeStart + 0.99)
        const bytes = encodePathwayContextBytes(ctx)
        assert.equal(encodePathwayContext(ctx), Buffer.from(bytes).toString('base64'))
        assert.deepEqual(decodePathwayContext(Buffer.from(Buffer.from(bytes).toString('base64'))), decodePathwayContextBytes(bytes))
      }),
      { numRuns: 5000 },
    )
    // Any 20 bytes, most of them not two 6-byte varints (the general decoder reads those): the same context or the same null.
    const sane = fc.integer({ min: MIN_TIME_MS, max: Date.now() }).map((t) => encodePathwayContextBytes(new PathwayContext(0, 0, t, t)).subarray(8, 14))
    const twenty = fc.oneof(
      fc.uint8Array({ minLength: 20, maxLength: 20 }),
      fc.tuple(fc.uint8Array({ minLength: 8, maxLength: 8 }), sane, sane).map(([h, p, e]) => Uint8Array.from([...h, ...p, ...e])),
      fc.tuple(fc.uint8Array({ minLength: 8, maxLength: 8 }), sane, fc.uint8Array({ minLength: 6, maxLength: 6 })).map(([h, p, e]) => Uint8Array.from([...h, ...p, ...e])),
    )
    fc.assert(
      fc.property(twenty, (bytes) => {
        const text = Buffer.from(bytes).toString('base64')
        assert.equal(text.length, 28)
        assert.deepEqual(decodePathwayContext(text), decodePathwayContextBytes(bytes))
        assert.deepEqual(decodePathwayContext(Buffer.from(text)), decodePathwayContextBytes(bytes))
      }),
      { numRuns: 20_000 },
    )
  })

  test('a header value made again from the same hash and whole milliseconds is the one made before; any other difference makes a new one', () => {
    // Each context differs from the one before in one part (hash half, pathway start, edge start, or
    // only below the millisecond): the value must always be that context's own.
    const step = fc.record({ part: fc.constantFrom('hi', 'lo', 'pathway', 'edge', 'fraction'), value: u32, time: ms, fraction: fc.double({ min: 0, max: 0.999, noNaN: true }) })
    fc.assert(
      fc.property(u32, u32, ms, ms, fc.array(step, { minLength: 1, maxLength: 30 }), (hi, lo, pathwayStart, edgeStart, steps) => {
        let c = { hi, lo, pathwayStart, edgeStart }
        for (const s of steps) {
          if (s.part === 'hi') c = { ...c, hi: s.value }
          else if (s.part === 'lo') c = { ...c, lo: s.value }
          else if (s.part === 'pathway') c = { ...c, pathwayStart: s.time }
          else if (s.part === 'edge') c = { ...c, edgeStart: s.time }
          else c = { ...c, pathwayStart: Math.floor(c.pathwayStart) + s.fraction, edgeStart: Math.floor(c.edgeStart) + s.fraction }
          const ctx = new PathwayContext(c.hi, c.lo, c.pathwayStart, c.edgeStart)
          assert.equal(encodePathwayContext(ctx), Buffer.from(encodePathwayContextBytes(ctx)).toString('base64'))
        }
      }),
      { numRuns: 2000 },
    )
  })

  test('fuzz: 100,000 random strings and byte arrays never make decoding throw', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), fc.base64String({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 })), (value) => {
        const ctx = decodePathwayContext(value)
        assert.ok(ctx === null || ctx instanceof PathwayContext)
        extractPathwayContext({ [PATHWAY_KEY]: value, [LEGACY_PATHWAY_KEY]: value })
      }),
      { numRuns: 50_000 },
    )
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        const raw = decodePathwayContextBytes(bytes)
        assert.ok(raw === null || raw instanceof PathwayContext)
        const text = decodePathwayContext(bytes)
        assert.ok(text === null || text instanceof PathwayContext)
      }),
      { numRuns: 50_000 },
    )
  })
})
