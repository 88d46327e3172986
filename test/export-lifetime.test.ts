/**
 * What pathwise's export does to a process's lifetime, in real child processes using the built
 * package: the timer's flushes never keep a process alive, and the flush on the way out
 * (beforeExit) sends what is new once, without retrying a failing Agent forever.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { appDir, run } from './helpers/app-dir.js'
import { closedPort, startScriptedAgent } from './helpers/scripted-agent.js'

/** An application that records one checkpoint and ends, with the default 10 s flush interval. */
const RECORD_AND_END = `import { createDataStreams } from 'pathwise'
const dsm = createDataStreams({ enabled: true, service: 'ending', agentUrl: process.env.AGENT_URL, flushIntervalMs: 10_000 })
dsm.setProduceCheckpoint('kafka', 'orders', {})
`

describe('export and the process lifetime', { concurrency: true }, () => {
  test('the 10 s timer and an unreachable Agent do not keep a process alive', async () => {
    const app = await appDir({ 'app.mjs': RECORD_AND_END })
    try {
      const { code, stderr } = await run(process.execPath, ['app.mjs'], {
        dir: app.dir,
        env: { AGENT_URL: `http://127.0.0.1:${await closedPort()}` },
        limitMs: 20_000,
      })
      assert.equal(code, 0, `killed after 20 s or failed: ${stderr}`)
      assert.match(stderr, /cannot send stats to the Datadog Agent .*ECONNREFUSED/)
    } finally {
      await app.remove()
    }
  })

  test('the exit flush delivers, and sends once to an Agent that keeps failing', async () => {
    const ok = await startScriptedAgent()
    const failing = await startScriptedAgent({ then: 503 })
    const app = await appDir({ 'app.mjs': RECORD_AND_END })
    try {
      const [delivered, refused] = await Promise.all(
        [ok, failing].map((agent) => run(process.execPath, ['app.mjs'], { dir: app.dir, env: { AGENT_URL: agent.url }, limitMs: 20_000 })),
      )
      assert.equal(delivered.code, 0, delivered.stderr)
      assert.deepEqual(ok.received, ['ending'])
      assert.equal(refused.code, 0, refused.stderr)
      // the first attempt and its two retries; the beforeExit after them finds nothing new
      assert.equal(failing.requests, 3)
      assert.deepEqual(failing.received, ['ending', 'ending', 'ending'])
    } finally {
      await app.remove()
      await Promise.all([ok.close(), failing.close()])
    }
  })

  test('a timer flush in flight does not keep the process alive', async () => {
    // The explicit flush meets three 503s, so its payload stays queued; the timer's next flush
    // retries it into an Agent that never answers, and the process must not wait for that.
    const agent = await startScriptedAgent({ script: [503, 503, 503], then: 'hang' })
    const app = await appDir({
      'app.mjs': `import { createDataStreams } from 'pathwise'
const dsm = createDataStreams({ enabled: true, service: 'timer', agentUrl: process.env.AGENT_URL, flushIntervalMs: 100 })
dsm.setProduceCheckpoint('kafka', 'orders', {})
await dsm.flush()
// the IPC channel keeps the process alive until the parent has seen the timer's request
process.once('message', () => process.disconnect())
`,
    })
    try {
      const { code, stderr } = await run(process.execPath, ['app.mjs'], {
        dir: app.dir,
        env: { AGENT_URL: agent.url },
        ipc: true,
        // under the 10 s the request in flight would wait for its answer if it held the process
        limitMs: 8000,
        onStart: (child) => void agent.waitFor(() => agent.received.length === 4).then(() => child.send('go')),
      })
      assert.equal(code, 0, `killed, or failed: ${stderr}`)
      assert.equal(agent.requests, 4)
    } finally {
      await app.remove()
      await agent.close()
    }
  })
})
