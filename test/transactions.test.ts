/**
 * Transaction tracking and the payload's newer fields: `Transactions` and `TransactionCheckpointIds`
 * byte for byte (against dd-trace 6.21's own processor, run side by side), the 254-name and per-bucket
 * caps, the cuts at 255 bytes, `ProductMask` and `ProcessTags`, all read back from what a real HTTP
 * Agent received.
 */
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import fc from 'fast-check'
import { createDataStreams } from '../bindings/index.js'
import { createDataStreams as createEdgeDataStreams } from '../bindings/edge.js'
import { MAX_CHECKPOINT_NAMES, MAX_PENDING_TRANSACTION_BUCKETS, MAX_TRANSACTION_BYTES_PER_BUCKET, TransactionLog, writeNanoseconds } from '../bindings/processor/transactions.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'

interface TransactionBucket {
  Start: bigint
  Transactions?: Uint8Array
  TransactionCheckpointIds?: Uint8Array
  Stats: unknown[]
}

interface Record {
  checkpoint: number
  ns: bigint
  id: Uint8Array
}

/** Reads the records of a `Transactions` field, asserting that they cover it exactly. */
function records(bytes: Uint8Array): Record[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out: Record[] = []
  let at = 0
  while (at < bytes.length) {
    assert.ok(at + 10 <= bytes.length, 'a truncated record header')
    const length = bytes[at + 9]
    assert.ok(at + 10 + length <= bytes.length, 'a truncated id')
    out.push({ checkpoint: bytes[at], ns: view.getBigInt64(at + 1), id: bytes.subarray(at + 10, at + 10 + length) })
    at += 10 + length
  }
  return out
}

const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'))
const names = (...list: string[]) => new Uint8Array(list.flatMap((name, i) => [i + 1, utf8(name).length, ...utf8(name)]))

const require = createRequire(import.meta.url)

/** dd-trace 6.21's own processor, as a reference: its buckets, serialized as it sends them. */
function ddTraceProcessor(): { trackTransaction(id: string, name: string): void; buckets(): TransactionBucket[]; close(): void } {
  const g = globalThis as { [k: symbol]: unknown }
  g[Symbol.for('dd-trace')] ??= { beforeExitHandlers: new Set() }
  const { DataStreamsProcessor } = require('dd-trace/packages/dd-trace/src/datastreams/processor.js')
  const p = new DataStreamsProcessor({ dsmEnabled: true, flushInterval: 3_600_000, url: new URL('http://127.0.0.1:9'), env: 'e', service: 's' })
  return {
    trackTransaction: (id, name) => p.trackTransaction(id, name),
    buckets: () => p._serializeBuckets().Stats,
    close: () => clearInterval(p.timer),
  }
}

/** The bytes with every record's timestamp zeroed: what two tracers recording the same calls at different instants agree on. */
function withoutTimes(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice()
  let at = 0
  while (at < out.length) {
    out.fill(0, at + 1, at + 9)
    at += 10 + out[at + 9]
  }
  return out
}

let agent: TestAgent
before(async () => {
  agent = await startAgent()
})
after(() => agent.close())

/** Flushes what `calls` records, through a real HTTP Agent, and returns the payload received. */
async function sent(calls: (dsm: ReturnType<typeof createDataStreams>) => void, options: object = {}) {
  const dsm = createDataStreams({ enabled: true, service: 'orders', agentUrl: agent.url, flushIntervalMs: 0, ...options })
  const from = agent.payloads.length
  const beforeNs = BigInt(Date.now() - 1) * 1_000_000n
  calls(dsm)
  const afterNs = BigInt(Date.now() + 1) * 1_000_000n
  await dsm.shutdown()
  await agent.waitFor((p) => p.length > from)
  return { payload: agent.payloads[from] as unknown as { ProductMask?: unknown; ProcessTags?: string[]; Stats: TransactionBucket[] }, dsm, beforeNs, afterNs }
}

describe('trackTransaction on the wire', () => {
  test('records and checkpoint ids field by field: id, big-endian wall time in ns, id length, id; ids stable across calls', async () => {
    const { payload, dsm, beforeNs, afterNs } = await sent((d) => {
      d.trackTransaction('order-1', 'received')
      d.trackTransaction('order-2', 'received')
      d.trackTransaction('order-1', 'shipped')
      d.trackTransaction('ordér-3', 'reçu')
    })
    const withTx = payload.Stats.filter((b) => b.Transactions !== undefined)
    assert.ok(withTx.length >= 1 && withTx.length <= 2, 'the calls span at most two buckets')
    const all = withTx.flatMap((b) => {
      assert.ok(b.Transactions instanceof Uint8Array && b.TransactionCheckpointIds instanceof Uint8Array, 'both fields are msgpack bin')
      // Every bucket carries every name registered so far.
      assert.deepEqual(b.TransactionCheckpointIds, names('received', 'shipped', 'reçu'))
      return records(b.Transactions!).map((r) => ({ ...r, bucket: b.Start }))
    })
    assert.deepEqual(
      all.map((r) => [r.checkpoint, Buffer.from(r.id).toString('utf8')]),
      [
        [1, 'order-1'],
        [1, 'order-2'],
        [2, 'order-1'],
        [3, 'ordér-3'],
      ],
    )
    for (const r of all) {
      assert.ok(r.ns >= beforeNs && r.ns <= afterNs, `timestamp ${r.ns} is the wall clock at the call`)
      assert.equal(r.bucket, r.ns - (r.ns % 10_000_000_000n), 'a record is in the bucket of its time')
    }
    assert.ok(all.every((r, i) => i === 0 || r.ns >= all[i - 1].ns), 'records in call order')
    for (const b of payload.Stats.filter((x) => x.Transactions === undefined)) assert.equal(b.TransactionCheckpointIds, undefined, 'a bucket of no records carries neither field')
    assert.equal(dsm.stats.droppedTransactions, 0)
  })

  test('the same bytes as dd-trace 6.21 writes for the same calls (timestamps aside)', async () => {
    const calls: Array<[string, string]> = [
      ['order-1', 'received'],
      ['x'.repeat(300), 'received'],
      ['é'.repeat(200), 'n'.repeat(400)],
      ['😀'.repeat(70), '😀'.repeat(70)],
      ['a'.repeat(254) + 'é', 'é'.repeat(127) + 'x'],
      ['\ud800 lone', 'lone \udc00'],
      ['order-1', 'shipped'],
    ]
    const dd = ddTraceProcessor()
    const { payload } = await sent((d) => {
      for (const [id, name] of calls) {
        d.trackTransaction(id, name)
        dd.trackTransaction(id, name)
      }
    })
    const ddBuckets = dd.buckets()
    dd.close()
    const ours = payload.Stats.filter((b) => b.Transactions !== undefined)
    assert.equal(ours.length, ddBuckets.length, 'as many buckets of records (the calls crossed a boundary in both or neither)')
    ours.forEach((b, i) => {
      assert.deepEqual(withoutTimes(b.Transactions!), withoutTimes(new Uint8Array(ddBuckets[i].Transactions!)))
      assert.deepEqual(b.TransactionCheckpointIds, new Uint8Array(ddBuckets[i].TransactionCheckpointIds!))
    })
  })

  test('the edge build records transactions too', async () => {
    const dsm = createEdgeDataStreams({ enabled: true, service: 'edge', agentUrl: agent.url })
    const from = agent.payloads.length
    dsm.trackTransaction('t-1', 'edge-in')
    await dsm.flush()
    await agent.waitFor((p) => p.length > from)
    const buckets = (agent.payloads[from] as unknown as { Stats: TransactionBucket[]; ProductMask: unknown; ProcessTags?: unknown }).Stats
    const [r] = buckets.flatMap((b) => (b.Transactions ? records(b.Transactions) : []))
    assert.equal(Buffer.from(r.id).toString(), 't-1')
    assert.equal((agent.payloads[from] as unknown as { ProductMask: unknown }).ProductMask, 2)
    assert.equal((agent.payloads[from] as unknown as { ProcessTags?: unknown }).ProcessTags, undefined, 'no process to state on the edge')
  })

  test('a disabled DataStreams records nothing; bad ids and names are refused and counted, never thrown', async () => {
    const off = createDataStreams({ enabled: false })
    off.trackTransaction('t', 'c')
    assert.equal(off.stats.droppedTransactions, 0)
    const { payload, dsm } = await sent((d) => {
      d.setCheckpoint(['direction:out', 'topic:t', 'type:kafka'])
      for (const bad of [undefined, null, 42, '', {}, Symbol('s'), ['t']]) {
        d.trackTransaction(bad as never, 'c')
        d.trackTransaction('t', bad as never)
      }
    })
    assert.equal(dsm.stats.invalidInputs, 14)
    assert.equal(payload.Stats.find((b) => b.Transactions), undefined)
  })
})

describe('the caps', () => {
  test('254 checkpoint names: a 255th is dropped, counted and warned about once; known names still record', async () => {
    const warnings: string[] = []
    const warn = console.warn
    console.warn = (msg: string) => void warnings.push(msg)
    let result
    try {
      result = await sent((d) => {
        for (let i = 1; i <= 300; i++) d.trackTransaction(`t${i}`, `step-${i}`)
        d.trackTransaction('t-again', 'step-1')
      })
    } finally {
      console.warn = warn
    }
    const { payload, dsm } = result
    assert.equal(dsm.stats.droppedTransactions, 300 - MAX_CHECKPOINT_NAMES)
    assert.equal(warnings.filter((w) => w.includes('254 checkpoint names')).length, 1)
    const buckets = payload.Stats.filter((b) => b.Transactions)
    const ids = buckets.at(-1)!.TransactionCheckpointIds!
    assert.deepEqual(ids, names(...Array.from({ length: MAX_CHECKPOINT_NAMES }, (_, i) => `step-${i + 1}`)))
    const all = buckets.flatMap((b) => records(b.Transactions!))
    assert.equal(all.length, MAX_CHECKPOINT_NAMES + 1)
    assert.deepEqual(all.at(-1)!.checkpoint, 1, 'a registered name keeps recording')
  })

  test(`a bucket holds at most ${MAX_TRANSACTION_BYTES_PER_BUCKET} bytes of records; past it calls are dropped and counted`, async () => {
    const log = new TransactionLog()
    const id = 'i'.repeat(255)
    let recorded = 0
    let dropped = 0
    for (let i = 0; i < 10_000; i++) {
      if (log.track(id, 'step', 1_795_791_460_000, 179_579_146) === 'recorded') recorded++
      else dropped++
    }
    assert.equal(recorded, Math.floor(MAX_TRANSACTION_BYTES_PER_BUCKET / 265))
    assert.equal(dropped, 10_000 - recorded)
    const bytes = log.drain(Infinity).get(179_579_146)!
    assert.equal(bytes.length, recorded * 265)
    // Another bucket starts with a fresh budget.
    assert.equal(log.track(id, 'step', 1_795_791_470_000, 179_579_147), 'recorded')
  })

  test(`at most ${MAX_PENDING_TRANSACTION_BUCKETS} buckets wait for a flush; then new buckets are refused until one drains`, () => {
    const log = new TransactionLog()
    for (let b = 0; b < MAX_PENDING_TRANSACTION_BUCKETS; b++) assert.equal(log.track('t', 'c', b * 10_000, b), 'recorded')
    assert.equal(log.track('t', 'c', 99 * 10_000, 99), 'bucket-full')
    log.drain(1)
    assert.equal(log.track('t', 'c', 99 * 10_000, 99), 'recorded')
  })

  test('huge ids and names cost no more than 255 bytes of them, and keep nothing large alive', () => {
    const log = new TransactionLog()
    const huge = 'é'.repeat(8 * 2 ** 20)
    const other = `${huge}x`
    const started = performance.now()
    for (let i = 0; i < 1000; i++) log.track(huge, i % 2 === 0 ? huge : other, 0, 0)
    assert.ok(performance.now() - started < 5_000, 'a bounded cost a call')
    const ids = log.checkpointIds()
    assert.equal(ids[0], 1)
    assert.equal(ids[1], 254, 'a name cut before the character that would not fit')
    assert.equal(ids.length, 256, 'names equal in their first 255 bytes are one checkpoint')
  })
})

describe('timestamps', () => {
  test('written as exact nanoseconds, with no BigInt, for any time of this century', () => {
    fc.assert(
      fc.property(fc.integer({ min: 946_684_800_000, max: 4_102_444_800_000 }), fc.integer({ min: 0, max: 999_999 }), (ms, ns) => {
        const bytes = new Uint8Array(8)
        writeNanoseconds(bytes, 0, ms + ns / 1e6)
        const written = new DataView(bytes.buffer).getBigInt64(0)
        const exact = BigInt(ms) * 1_000_000n + BigInt(ns)
        // A double holds ms + ns/1e6 to about 0.25 µs at these magnitudes.
        const diff = written > exact ? written - exact : exact - written
        return diff <= 500n && (ns !== 0 || written === exact)
      }),
    )
  })
})

describe('ProductMask and ProcessTags', () => {
  test('ProductMask carries the DSM bit; ProcessTags the entrypoint, working directory, package name and service origin', async () => {
    const { payload } = await sent((d) => d.setCheckpoint(['direction:out', 'topic:t', 'type:kafka']))
    assert.equal(payload.ProductMask, 2)
    const entry = process.argv[1]
    const expected = [
      `entrypoint.basedir:${path.basename(path.dirname(entry)).toLowerCase()}`,
      `entrypoint.name:${path.basename(entry, path.extname(entry)).toLowerCase()}`,
      'entrypoint.type:script',
      `entrypoint.workdir:${path.basename(process.cwd()).toLowerCase()}`,
      'package.json.name:pathwise',
      'svc.user:true',
    ]
    assert.deepEqual(payload.ProcessTags, expected)
  })

  test('svc.auto names a default service; DD_EXPERIMENTAL_PROPAGATE_PROCESS_TAGS_ENABLED=false leaves ProcessTags out', async () => {
    const saved = process.env.DD_SERVICE
    delete process.env.DD_SERVICE
    try {
      const { payload } = await sent((d) => d.setCheckpoint(['direction:out', 'topic:t', 'type:kafka']), { service: undefined })
      assert.equal(payload.ProcessTags!.at(-1), 'svc.auto:unnamed-javascript-service')
      process.env.DD_EXPERIMENTAL_PROPAGATE_PROCESS_TAGS_ENABLED = 'false'
      const off = await sent((d) => d.setCheckpoint(['direction:out', 'topic:t', 'type:kafka']))
      assert.equal(off.payload.ProcessTags, undefined)
      assert.equal(off.payload.ProductMask, 2)
    } finally {
      delete process.env.DD_EXPERIMENTAL_PROPAGATE_PROCESS_TAGS_ENABLED
      if (saved !== undefined) process.env.DD_SERVICE = saved
    }
  })
})
