/**
 * Memory bounded whatever the cardinality: 100,000 distinct topics through one DataStreams (each
 * core and the edge build, in a child process with --expose-gc), then a flush: the node cache
 * starts over at its bound, and the heap comes back near where it started.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { runNode } from './helpers/run-node.js'

/** What the heap may keep after the load and a flush: the live nodes of the cache (at most 10,000, here about 3 MB), and the JIT's leftovers. */
const HEAP_BOUND_BYTES = 8 * 1024 * 1024

describe('100,000 distinct topics, then a flush', () => {
  for (const which of ['wasm', 'ts', 'edge']) {
    test(`${which}: the node cache evicts past 10,000 nodes and the heap comes back within ${HEAP_BOUND_BYTES >> 20} MB`, async () => {
      const run = await runNode(['--expose-gc', '--import', 'tsx', 'test/fixtures/memory/cardinality.ts', which], {}, 120_000)
      assert.equal(run.code, 0, run.stderr)
      const { heapBefore, heapPeak, heapAfter, stats } = JSON.parse(run.stdout.trim().split('\n').pop()!)
      assert.ok(stats.evictedNodes >= 90_000, `evicted ${stats.evictedNodes}`)
      assert.equal(stats.livePoints, 0)
      assert.ok(heapPeak > heapBefore, 'the load did take memory')
      assert.ok(heapAfter - heapBefore < HEAP_BOUND_BYTES, `heap grew by ${((heapAfter - heapBefore) / 1048576).toFixed(1)} MB`)
    })
  }
})
