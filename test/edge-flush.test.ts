/**
 * pathwise/edge where the runtime has an event loop (Node here; Bun and Deno alike): an awaited
 * flush keeps the process alive through its retries, even when the Agent cannot be reached.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { test } from 'node:test'
import { runNode } from './helpers/run-node.js'

test('an awaited flush of the edge build settles when the Agent refuses connections', async () => {
  // a port that was free a moment ago: nothing listens there
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as { port: number }).port
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  const run = await runNode(['--import', 'tsx', 'test/fixtures/edge/flush-unreachable.mts', `http://127.0.0.1:${port}`], {}, 60_000)
  assert.equal(run.code, 0, run.stderr)
  assert.deepEqual(JSON.parse(run.stdout.trim().split('\n').pop()!), { flushed: true, livePoints: 0 })
})
