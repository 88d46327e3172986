/**
 * The README's NATS example, taken from README.md and run as is by a user's process (an ES module
 * in a directory with pathwise and nats installed) against a real nats-server: the invoice's
 * publish, its delivery to the queue group on the wildcard subscription, and the email published
 * in the callback under the invoice's context all reach the Agent, chained.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { symlink } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { appDir, run } from './helpers/app-dir.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { startNats, type NatsPeer } from './peers/nats.js'
import { expectedHash as hashIn } from './helpers/expected-hash.js'
import { waitForPoint } from './fixtures/aws/pathways.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const section = readme.slice(readme.indexOf('\n## NATS\n'))
const example = /```js\n([\s\S]*?)```/.exec(section)?.[1] ?? ''
const root = fileURLToPath(new URL('..', import.meta.url))

describe('the README NATS example', () => {
  let nats: NatsPeer
  let agent: TestAgent
  before(async () => {
    ;[nats, agent] = await Promise.all([startNats(), startAgent()])
  })
  after(() => Promise.all([nats.stop(), agent.close()]))

  test('runs as is: publish, the queue group delivery, and the publish in its callback, chained', async () => {
    assert.match(example, /instrumentNats\(nc, dsm\)/)
    const app = await appDir({ 'app.mjs': example })
    try {
      await symlink(path.join(root, 'node_modules/nats'), path.join(app.dir, 'node_modules/nats'), 'dir')
      const { code, stdout, stderr } = await run(process.execPath, ['app.mjs'], { dir: app.dir, env: { NATS_URL: nats.servers, DD_TRACE_AGENT_URL: agent.url } })
      assert.equal(code, 0, `exit ${code}\n${stdout}\n${stderr}`)
      const hash = (tags: string[], parent: bigint) => hashIn('billing', 'none', tags, parent)
      const invoice = hash(['direction:out', 'topic:invoices.eu', 'type:nats'], 0n)
      const delivered = hash(['direction:in', 'group:mailers', 'topic:invoices.eu', 'type:nats'], invoice)
      const email = hash(['direction:out', 'topic:emails.queued', 'type:nats'], delivered)
      for (const h of [invoice, delivered, email]) await waitForPoint(agent, 'billing', h)
    } finally {
      await app.remove()
    }
  })
})
