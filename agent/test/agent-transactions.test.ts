/**
 * Transaction tracking in the agent: the Transactions of pathwise's and dd-trace 6.21's payloads
 * become latencies between checkpoint pairs in /api/transactions and /metrics; malformed bytes
 * cost only themselves (the rest of the payload is kept); the ids remembered are capped.
 */
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { after, before, describe, test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { encode } from '@msgpack/msgpack'
import fc from 'fast-check'
import { chromium } from 'playwright-core'
import type { ExportBucket } from '../../bindings/export/payload.js'
import { startAgent, type RunningAgent } from '../src/server.js'
import type { Summary } from '../src/views/api.js'
import { transactionRecords, TransactionsWireWriter } from '../src/model/transaction-wire.js'
import { TransactionTracker, type TransactionsView } from '../src/views/transactions.js'
import { exportPayload, getJson, postStats, sketchOf, trackedBuckets } from './helpers/agent-fixtures.js'

const require = createRequire(import.meta.url)
const quiet = (): void => {}

const payload = (buckets: ExportBucket[], service = 'orders'): Uint8Array => exportPayload(service, buckets)
const tracked = trackedBuckets

/** A stats point as a tracer's msgpack map (for payloads encoded by hand). */
function rawPoint(topic: string, hash: bigint): Record<string, unknown> {
  return {
    EdgeTags: ['direction:out', `topic:${topic}`, 'type:kafka'],
    Hash: hash,
    ParentHash: 0n,
    PathwayLatency: sketchOf([0.1]),
    EdgeLatency: sketchOf([0.1]),
    PayloadSize: sketchOf([10]),
    TimestampType: 'current',
  }
}

const near = (actual: number, expected: number) => assert.ok(Math.abs(actual - expected) <= expected * 0.02, `${actual} is not within 2% of ${expected}`)

describe('transactions through the agent', () => {
  let agent: RunningAgent
  before(async () => {
    agent = await startAgent({ port: 0, log: quiet })
  })
  after(() => agent.close())

  test('pairs of checkpoints on the same ids give their latencies in /api/transactions and /metrics', async () => {
    const t0 = Date.now() - 30_000
    const calls: Array<[string, string, number]> = []
    for (let i = 0; i < 100; i++) {
      calls.push([`order-${i}`, 'received', t0 + i])
      calls.push([`order-${i}`, 'shipped', t0 + i + (i < 50 ? 500 : 1500)])
    }
    // One id reaches a third checkpoint, in another payload (another service).
    assert.equal((await postStats(agent.url, payload(tracked(calls)))).status, 200)
    assert.equal((await postStats(agent.url, payload(tracked([['order-7', 'billed', t0 + 7 + 2000]]), 'billing'))).status, 200)

    const view = await getJson<TransactionsView>(agent.url, '/api/transactions?range=60')
    const shipped = view.pairs.find((p) => p.from === 'received' && p.to === 'shipped')
    assert.ok(shipped, JSON.stringify(view.pairs))
    assert.equal(shipped.count, 100)
    near(shipped.latency!.p50, 0.5)
    near(shipped.latency!.p99, 1.5)
    assert.ok(shipped.buckets.length >= 1 && shipped.buckets.reduce((n, b) => n + b.count, 0) === 100, 'per bucket over time')
    const billed = view.pairs.filter((p) => p.to === 'billed').map((p) => [p.from, p.count, Math.round(p.latency!.p50 * 10) / 10])
    assert.deepEqual(billed.sort(), [
      ['received', 1, 2],
      ['shipped', 1, 1.5],
    ])
    assert.equal(view.ids.tracked, 100)

    const metrics = await (await fetch(`${agent.url}/metrics`)).text()
    // A histogram in the edge latencies' buckets: half the latencies at 0.5 s (a bound, give or take the records' rounding), half at 1.5 s.
    const series = 'pathwise_transaction_latency_seconds_bucket{from_checkpoint="received",to_checkpoint="shipped",'
    assert.match(metrics, /^# TYPE pathwise_transaction_latency_seconds histogram$/m)
    assert.ok(metrics.includes(`${series}le="0.545254"} 50\n`), metrics)
    assert.ok(metrics.includes(`${series}le="+Inf"} 100\n`), metrics)
    assert.match(metrics, /^pathwise_transaction_ids 100$/m)
  })

  test('dd-trace 6.21 payloads are read too', async () => {
    const g = globalThis as { [k: symbol]: unknown }
    g[Symbol.for('dd-trace')] ??= { beforeExitHandlers: new Set() }
    const { DataStreamsProcessor } = require('dd-trace/packages/dd-trace/src/datastreams/processor.js')
    const { encode: ddEncode } = require('dd-trace/packages/dd-trace/src/msgpack/index.js')
    const dd = new DataStreamsProcessor({ dsmEnabled: true, flushInterval: 3_600_000, url: new URL('http://127.0.0.1:9'), env: 'test', service: 'dd-js' })
    clearInterval(dd.timer)
    dd.trackTransaction('dd-1', 'dd-in')
    dd.trackTransaction('dd-1', 'dd-out')
    const body = { Env: 'test', Service: 'dd-js', Stats: dd._serializeBuckets().Stats, TracerVersion: '6.21.0', Lang: 'javascript', Version: '' }
    assert.equal((await postStats(agent.url, new Uint8Array(gzipSync(ddEncode(body))))).status, 200)
    const view = await getJson<TransactionsView>(agent.url, '/api/transactions')
    const pair = view.pairs.find((p) => p.from === 'dd-in' && p.to === 'dd-out')
    assert.ok(pair, JSON.stringify(view.pairs))
    assert.equal(pair.count, 1)
  })

  test('malformed Transactions bytes do not throw, nor lose the rest of the payload', async () => {
    const bucketMs = Date.now() - (Date.now() % 10_000)
    const [good] = tracked([
      ['m-1', 'mal-in', bucketMs + 1],
      ['m-1', 'mal-out', bucketMs + 101],
      ['m-2', 'mal-in', bucketMs + 2],
    ])
    const records = good.transactions!.records
    const ids = good.transactions!.checkpointIds
    const point = rawPoint('malformed', 0x1234n)
    const bucket = (Transactions: unknown, TransactionCheckpointIds: unknown) => ({
      Start: BigInt(bucketMs) * 1_000_000n,
      Duration: 10_000_000_000n,
      Stats: [point],
      Backlogs: [],
      Transactions,
      TransactionCheckpointIds,
    })
    const unknownId = records.slice()
    unknownId[0] = 200
    const body = {
      Env: 'test',
      Service: 'malformed',
      Stats: [
        // The first two records whole, the third cut inside its id: the two pair, the rest is dropped.
        bucket(records.subarray(0, records.length - 2), ids),
        bucket(records.subarray(0, 5), ids),
        bucket('not binary', ids),
        bucket(records, 42),
        bucket(records, ids.subarray(0, ids.length - 1)),
        bucket(unknownId, ids),
        bucket(new Uint8Array(0), new Uint8Array(0)),
      ],
      TracerVersion: '1',
      Lang: 'go',
      Version: '',
    }
    const before = await getJson<TransactionsView>(agent.url, '/api/transactions')
    const res = await postStats(agent.url, new Uint8Array(gzipSync(encode(body, { useBigInt64: true }))))
    assert.equal(res.status, 200, res.text)
    const summary = await getJson<Summary>(agent.url, '/api/summary')
    assert.ok(summary.edges.some((e) => e.topic === 'malformed'), 'the points of the payload are kept')
    const view = await getJson<TransactionsView>(agent.url, '/api/transactions')
    const pair = view.pairs.find((p) => p.from === 'mal-in' && p.to === 'mal-out')
    assert.ok(pair)
    near(pair.latency!.p50, 0.1)
    assert.equal(view.counters.malformed - before.counters.malformed, 3, 'a cut record, a cut record header, a cut name')
    assert.equal(view.counters.unknownCheckpoint - before.counters.unknownCheckpoint, 2, 'a name lost to the cut, an id no name has')
  })

  test('payloads with and without ProductMask, ProcessTags and transactions are all accepted (dd-trace-go writes empty binaries)', async () => {
    const bucketMs = Date.now() - (Date.now() % 10_000)
    const point = rawPoint('go-orders', 77n)
    const base = { Start: BigInt(bucketMs) * 1_000_000n, Duration: 10_000_000_000n, Stats: [point], Backlogs: [] }
    const header = { Env: 'test', Service: 'go-svc', TracerVersion: 'v2', Lang: 'go', Version: '' }
    const empty = new Uint8Array(0)
    const shapes = [
      { ...header, Stats: [{ ...base, Transactions: empty, TransactionCheckpointIds: empty }], ProcessTags: ['entrypoint.name:svc', 'entrypoint.type:executable'], ProductMask: 3 },
      { ...header, Stats: [{ ...base, Transactions: null, TransactionCheckpointIds: null }], ProcessTags: null, ProductMask: 3n },
      { ...header, Stats: [base] },
    ]
    for (const shape of shapes) {
      const res = await postStats(agent.url, new Uint8Array(gzipSync(encode(shape, { useBigInt64: true }))))
      assert.equal(res.status, 200, res.text)
    }
    const summary = await getJson<Summary>(agent.url, '/api/summary')
    assert.equal(summary.edges.find((e) => e.topic === 'go-orders')?.count, 3)
  })

  test('the page shows the pairs in its Transactions panel, names as text', async () => {
    const t0 = Date.now() - 5_000
    const name = '<img src=x onerror=alert(1)>'
    assert.equal((await postStats(agent.url, payload(tracked([['p-1', 'page-in', t0], ['p-1', name, t0 + 250]])))).status, 200)
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] })
    try {
      const page = await browser.newPage()
      const errors: string[] = []
      page.on('pageerror', (err) => errors.push(err.message))
      await page.goto(agent.url)
      const row = page.locator('#transactions tbody tr', { hasText: 'page-in' })
      await row.waitFor({ timeout: 10_000 })
      const cells = await row.locator('td').allTextContents()
      assert.deepEqual(cells.slice(0, 4), ['page-in', name, '1', cells[3]])
      assert.match(cells[3], /^2\d\d ms$/)
      assert.equal(await row.locator('svg.spark polyline').count(), 1)
      assert.match((await page.locator('#transactions-section .hint').textContent()) ?? '', /ids remembered/)
      assert.deepEqual(errors, [])
    } finally {
      await browser.close()
    }
  })
})

describe('the tracker alone', () => {
  test('remembers at most maxIds ids, forgetting the least recently seen, and counts it', () => {
    const now = 1_800_000_000_000
    const tracker = new TransactionTracker(3_600_000, () => now, { maxIds: 100 })
    for (let i = 0; i < 1000; i++) tracker.observe(`id-${i}`, 'a', now - 1000 + i)
    tracker.observe('id-0', 'b', now)
    tracker.observe('id-999', 'b', now)
    const view = tracker.view(60)
    assert.equal(view.ids.tracked, 100)
    assert.equal(view.counters.evictedIds, 901)
    assert.deepEqual(
      view.pairs.map((p) => [p.from, p.to, p.count]),
      [['a', 'b', 1]],
      'a forgotten id starts over; a remembered one pairs',
    )
  })

  test('records out of the window, repeats and the pair and cell caps are counted, not kept', () => {
    const now = 1_800_000_000_000
    const tracker = new TransactionTracker(60_000, () => now, { maxPairs: 2, maxCells: 3 })
    tracker.observe('x', 'a', now - 120_000)
    tracker.observe('x', 'a', now + 3_600_000)
    tracker.observe('x', 'a', now - 50_000)
    tracker.observe('x', 'a', now - 40_000)
    for (const c of ['b', 'c', 'd']) tracker.observe('x', c, now - 30_000)
    tracker.observe('y', 'a', now - 20_000)
    tracker.observe('y', 'b', now - 5_000)
    const view = tracker.view(60)
    assert.equal(view.counters.outOfWindow, 2)
    assert.equal(view.counters.duplicates, 1)
    // x: a→b, a→c (pairs cap 2), b→c refused, a→d / b→d / c→d refused; y: a→b in a third bucket (cell cap 3).
    assert.deepEqual(view.pairs.map((p) => [p.from, p.to, p.count]).sort(), [
      ['a', 'b', 2],
      ['a', 'c', 1],
    ])
    assert.equal(view.counters.droppedLatencies, 4)
  })

  test('at most maxNames checkpoint names, and MAX_CHECKPOINTS_PER_ID (8) checkpoints an id', () => {
    const now = 1_800_000_000_000
    const tracker = new TransactionTracker(3_600_000, () => now, { maxNames: 10 })
    for (let c = 0; c < 12; c++) tracker.observe('one', `c${c}`, now - 1000 + c)
    const view = tracker.view(60)
    assert.equal(view.counters.droppedNames, 2)
    // The ninth and tenth checkpoints pair with the eight kept, and are not kept themselves.
    assert.equal(view.pairs.length, 28 + 8 + 8)
    assert.ok(!view.pairs.some((p) => p.from === 'c8'))
  })

  test('any bytes: reading never throws, ids stay within 255 bytes, and the records are what the bytes say', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 })), { maxLength: 5 }), (buckets) => {
        const writer = new TransactionsWireWriter()
        for (const [records, names] of buckets) writer.bucket(records, names)
        const wire = writer.finish()
        if (wire === undefined) return true
        const counts = { malformed: 0, unknownCheckpoint: 0 }
        let n = 0
        for (const r of transactionRecords(wire, counts)) {
          n++
          if (Buffer.byteLength(r.id) > 255 * 3 || !Number.isFinite(r.ms)) return false
        }
        return n <= wire.bytes.length / 10
      }),
      { numRuns: 2000 },
    )
    const tracker = new TransactionTracker(3_600_000)
    fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), fc.uint8Array({ maxLength: 600 }), async (records, names) => {
        const writer = new TransactionsWireWriter()
        writer.bucket(records, names)
        await tracker.ingest(writer.finish())
      }),
      { numRuns: 500 },
    )
  })
})
