/**
 * The README's RabbitMQ examples, taken from README.md and run as they are by a user's process (an
 * ES module in a directory with pathwise, amqplib and rhea installed) against a real RabbitMQ 3.10:
 * amqplib's publish through an exchange, its consume and the publish in the handler, chained; rhea's
 * send and receive, chained.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { symlink } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { appDir, run } from './helpers/app-dir.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { startRabbitMq, type RabbitMqPeer } from './peers/rabbitmq.js'
import { expectedHash as hashIn } from './helpers/expected-hash.js'
import { waitForPoint } from './fixtures/aws/pathways.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const section = readme.slice(readme.indexOf('\n## RabbitMQ\n'))
const [amqplibExample, rheaExample] = [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1])
const root = fileURLToPath(new URL('..', import.meta.url))

describe('the README RabbitMQ examples', () => {
  let rabbit: RabbitMqPeer
  let agent: TestAgent
  before(async () => {
    ;[rabbit, agent] = await Promise.all([startRabbitMq(), startAgent()])
  })
  after(() => Promise.all([rabbit?.stop(), agent?.close()]))

  /** Runs an example in an application directory of its own with the clients installed. */
  const runExample = async (source: string) => {
    const app = await appDir({ 'app.mjs': source })
    try {
      for (const client of ['amqplib', 'rhea']) await symlink(path.join(root, 'node_modules', client), path.join(app.dir, 'node_modules', client), 'dir')
      const env = { RABBITMQ_URL: rabbit.url, AMQP_HOST: rabbit.host, AMQP_PORT: String(rabbit.port), DD_TRACE_AGENT_URL: agent.url }
      const { code, stdout, stderr } = await run(process.execPath, ['app.mjs'], { dir: app.dir, env })
      assert.equal(code, 0, `exit ${code}\n${stdout}\n${stderr}`)
      return stdout
    } finally {
      await app.remove()
    }
  }

  test('amqplib: the publish through the exchange, its consume, and the publish in the handler, chained', async () => {
    assert.match(amqplibExample, /instrumentAmqplib\(connection, dsm\)/)
    await runExample(amqplibExample)
    const hash = (tags: string[], parent: bigint) => hashIn('billing', 'none', tags, parent)
    const invoice = hash(['direction:out', 'exchange:invoices', 'has_routing_key:true', 'type:rabbitmq'], 0n)
    const consumed = hash(['direction:in', 'topic:billing-invoices', 'type:rabbitmq'], invoice)
    const email = hash(['direction:out', 'has_routing_key:true', 'topic:emails', 'type:rabbitmq'], consumed)
    for (const h of [invoice, consumed, email]) await waitForPoint(agent, 'billing', h)
  })

  test('rhea: the send and its receive, chained, the body as sent', async () => {
    assert.match(rheaExample, /instrumentRhea\(rhea, dsm\)/)
    assert.equal((await runExample(rheaExample)).trim(), 'parcel 7')
    const sent = hashIn('shipping', 'none', ['direction:out', 'exchange:/queue/parcels', 'type:rabbitmq'], 0n)
    await waitForPoint(agent, 'shipping', sent)
    await waitForPoint(agent, 'shipping', hashIn('shipping', 'none', ['direction:in', 'topic:/queue/parcels', 'type:rabbitmq'], sent))
  })
})
