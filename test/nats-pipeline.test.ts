/**
 * A NATS pipeline across processes, as users run it: service a publishes to a subject, service b
 * takes the messages in a queue group on a wildcard subscription and publishes each to a JetStream
 * stream, service c reads the stream with a durable pull consumer. Three child processes against a
 * real nats-server with JetStream, in the automatic mode (`--import pathwise/register`, the ESM
 * build, and `-r pathwise/register`, the CommonJS one) and with the explicit `instrumentNats`, each
 * receiving its own way (callbacks, async iterators, `consumer.next()`). The hashes must chain
 * a → b → b → c as pathwise's FNV-1 computes them independently, the edge tags be the ones the
 * README defines, the JetStream consumer's pending count reach the Agent as a `nats_pending`
 * backlog, and the pathwise agent show it as the consumer's lag.
 * Uses the built package: run `npm run build` first.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { AckPolicy, connect } from 'nats'
import { decodePathwayContext } from '../bindings/index.js'
import type { Summary } from '../agent/src/views/api.js'
import { startAgent as startPathwiseAgent, type RunningAgent } from '../agent/src/server.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { startServiceProcess } from './helpers/service-process.js'
import { startNats, type NatsPeer } from './peers/nats.js'
import { ENV, expectedHash, pointsOf, waitForPoint } from './fixtures/aws/pathways.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/nats/${name}`, import.meta.url))
const COUNT = 5

interface Seen {
  role: string
  carried: string[]
  current: string[]
}

/** A service in a child process: `ready()` once it printed so, `done` with what it saw. */
function service(args: string[], env: Record<string, string>): { ready(): Promise<unknown>; done: Promise<Seen> } {
  const p = startServiceProcess(args, env, 40_000)
  const done = p.exit.then(({ code, out, err }) => {
    const line = out.split('\n').find((l) => l.startsWith('{'))
    if (code !== 0 || line === undefined) throw new Error(`${env.ROLE} exited ${code}: ${err}${out}`)
    return JSON.parse(line) as Seen
  })
  return { ready: () => p.line(/ready\n/), done }
}

describe('NATS pipeline a → subject → b → stream → c, in child processes', () => {
  let nats: NatsPeer
  let testAgent: TestAgent
  let agent: RunningAgent

  before(async () => {
    ;[nats, testAgent] = await Promise.all([startNats({ jetStream: true }), startAgent()])
    agent = await startPathwiseAgent({ port: 0, log: () => {}, forward: testAgent.url })
    // The stream and its consumer, made as an operator would: no pathwise here.
    const nc = await connect({ servers: nats.servers })
    const jsm = await nc.jetstreamManager()
    await jsm.streams.add({ name: 'SHIPMENTS', subjects: ['shipments.>'] })
    await jsm.consumers.add('SHIPMENTS', { durable_name: 'shipper', ack_policy: AckPolicy.Explicit })
    await nc.close()
  })
  after(async () => {
    await agent.close()
    await testAgent.close()
    await nats.stop()
  })

  const modes = [
    { name: 'automatic, ESM', mode: 'callback', args: (app: string) => ['--import', 'pathwise/register', fixture(`${app}.mjs`)], app: 'app', explicit: false },
    { name: 'automatic, CommonJS', mode: 'iterator', args: (app: string) => ['-r', 'pathwise/register', fixture(`${app}.cjs`)], app: 'app', explicit: false },
    { name: 'explicit instrumentNats', mode: 'next', args: (app: string) => [fixture(`${app}.mjs`)], app: 'app', explicit: true },
  ] as const

  for (const { name, mode, args, app, explicit } of modes) {
    test(`${name}: b ${mode === 'callback' ? 'in a callback' : 'in a for await'}, c ${mode === 'next' ? 'with next()' : mode === 'callback' ? 'with consume({ callback })' : 'in a for await over consume()'}: the hashes chain and the pending count reaches the agent`, async () => {
      assert.ok(existsSync(`${root}/dist/register.js`) && existsSync(`${root}/dist/register.cjs`), 'dist/ is missing: npm run build')
      const svc = (role: string) => `nats-${role}-${mode}`
      const env = (role: string): Record<string, string> => ({
        ROLE: role,
        MODE: mode,
        COUNT: String(COUNT),
        SERVERS: nats.servers,
        EXPLICIT: explicit ? '1' : '0',
        DD_DATA_STREAMS_ENABLED: 'true',
        DD_SERVICE: svc(role),
        DD_ENV: ENV,
        DD_TRACE_AGENT_URL: agent.url,
      })
      // b first; c only once the stream holds every message, so that its first one has COUNT - 1 pending.
      const b = service(args(app), env('b'))
      await b.ready()
      const a = service(args(app), env('a'))
      const [seenA, seenB] = await Promise.all([a.done, b.done])
      assert.equal(seenA.role, 'a')
      const c = service(args(app), env('c'))
      const seenC = await c.done

      const h1 = expectedHash(svc('a'), ['direction:out', 'topic:orders.created', 'type:nats'], 0n)
      const h2 = expectedHash(svc('b'), ['direction:in', 'group:workers', 'topic:orders.created', 'type:nats'], h1)
      const h3 = expectedHash(svc('b'), ['direction:out', 'topic:shipments.created', 'type:nats'], h2)
      const h4 = expectedHash(svc('c'), ['direction:in', 'group:shipper', 'topic:shipments.created', 'type:nats'], h3)
      const points = await Promise.all([
        waitForPoint(testAgent, svc('a'), h1),
        waitForPoint(testAgent, svc('b'), h2),
        waitForPoint(testAgent, svc('b'), h3),
        waitForPoint(testAgent, svc('c'), h4),
      ])
      assert.deepEqual(
        points.map((p) => [p.EdgeTags, p.ParentHash]),
        [
          [['direction:out', 'topic:orders.created', 'type:nats'], 0n],
          [['direction:in', 'group:workers', 'topic:orders.created', 'type:nats'], h1],
          [['direction:out', 'topic:shipments.created', 'type:nats'], h2],
          [['direction:in', 'group:shipper', 'topic:shipments.created', 'type:nats'], h3],
        ],
      )
      // Every message went the same way: no point of these services hangs elsewhere.
      const stray = pointsOf(testAgent).filter((p) => p.service.endsWith(`-${mode}`) && ![h1, h2, h3, h4].includes(p.Hash))
      assert.deepEqual(stray.map((p) => `${p.service} ${p.EdgeTags.join(',')}`), [])

      // What travelled in the headers: a's context to b, b's produce to c.
      assert.equal(seenB.carried.length, COUNT)
      assert.ok(seenB.carried.every((v) => decodePathwayContext(v)?.hash === h1))
      assert.ok(seenC.carried.every((v) => decodePathwayContext(v)?.hash === h3))
      // The context current in b's handling (a callback's own; in a for await, the message's by contextOf).
      assert.ok(seenB.current.every((v) => decodePathwayContext(v)?.hash === h2), `b's current contexts: ${seenB.current}`)
      if (mode === 'callback') assert.ok(seenC.current.every((v) => decodePathwayContext(v)?.hash === h4))

      await testAgent.waitFor(() =>
        testAgent.payloads.some(
          (p) => p.Service === svc('c') && p.Stats.some((s) => s.Backlogs.some((x) => x.Tags.includes('type:nats_pending') && Number(x.Value) === COUNT - 1)),
        ),
      )
      const backlog = testAgent.payloads.flatMap((p) => (p.Service === svc('c') ? p.Stats.flatMap((s) => s.Backlogs) : []))[0]
      assert.deepEqual(backlog.Tags, ['type:nats_pending', 'consumer_group:shipper', 'stream:SHIPMENTS'])
      const summary = (await (await fetch(`${agent.url}/api/summary`)).json()) as Summary
      const lag = summary.lag.find((r) => r.transport === 'nats' && r.group === 'shipper')
      assert.ok(lag !== undefined && lag.topic === 'SHIPMENTS' && typeof lag.lagMessages === 'number', JSON.stringify(summary.lag))
      const edge = summary.edges.find((e) => e.kind === 'consume' && e.type === 'nats' && e.group === 'shipper')
      assert.ok(edge?.lag !== undefined, 'the consume edge of the JetStream consumer shows its lag')
    })
  }
})
