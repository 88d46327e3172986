/**
 * The README's BullMQ example, taken from README.md and run as is by a user's ES module, with
 * pathwise and bullmq installed beside it and a Redis of its own: it prints what the Worker
 * returned, exits 0, and its two checkpoints reach the Agent, the consume's parent the produce.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { symlink } from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import { describe, test } from 'node:test'
import { appDir, run } from './helpers/app-dir.js'
import { pointsOf } from './fixtures/aws/pathways.js'
import { inTags, outTags, redisAndAgent } from './fixtures/bullmq/setup.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const example = /```js\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('\n## BullMQ')))?.[1] ?? ''
const bullmqDir = path.dirname(createRequire(import.meta.url).resolve('bullmq/package.json'))

describe('the README BullMQ example', () => {
  const peers = redisAndAgent()

  test('runs as is: the job is processed, and its produce and consume reach the Agent, joined', async () => {
    assert.match(example, /^import \{ createDataStreams, instrumentBullmq \} from 'pathwise'$/m)
    const { redis, agent } = peers
    const app = await appDir({ 'example.mjs': example })
    try {
      await symlink(bullmqDir, path.join(app.dir, 'node_modules/bullmq'), 'dir')
      const env = { DD_DATA_STREAMS_ENABLED: 'true', DD_TRACE_AGENT_URL: agent.url, REDIS_HOST: redis.host, REDIS_PORT: String(redis.port) }
      const { code, stdout, stderr } = await run(process.execPath, ['example.mjs'], { dir: app.dir, env })
      assert.equal(code, 0, `exit ${code}\n${stdout}\n${stderr}`)
      assert.equal(stdout.trim(), 'sent to ada@example.com')
    } finally {
      await app.remove()
    }
    const points = pointsOf(agent).filter((p) => p.service === 'signup')
    const produced = points.find((p) => p.EdgeTags.join() === outTags('emails').join())
    const consumed = points.find((p) => p.EdgeTags.join() === inTags('emails').join())
    assert.ok(produced && consumed, `points: ${points.map((p) => p.EdgeTags.join()).join('; ')}`)
    assert.equal(produced.ParentHash, 0n)
    assert.equal(consumed.ParentHash, produced.Hash)
  })
})
