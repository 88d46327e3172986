/**
 * `npm start` (after its build step, which `npm test` has just done): the agent and the demo
 * pipeline come up, the page and the API show the pipeline within 30 s (the hop through RabbitMQ,
 * slower to start, within 60 s), and Ctrl-C stops it all.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

function demoServices(): string[] {
  try {
    return execFileSync('pgrep', ['-f', 'demo/services/'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean)
  } catch {
    return []
  }
}

interface Summary {
  nodes: { id: string }[]
  edges: { from: string; to: string; rate: number }[]
}

test('npm start serves the pipeline within 30 s (its RabbitMQ hop within 60 s) and stops cleanly on Ctrl-C', { timeout: 120_000 }, async () => {
  const before = demoServices()
  const demo = spawn(process.execPath, ['--import', 'tsx', 'demo/run.ts'], {
    cwd: root,
    env: { ...process.env, PATHWISE_AGENT_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  demo.stdout.on('data', (chunk: Buffer) => (output += chunk))
  demo.stderr.on('data', (chunk: Buffer) => (output += chunk))
  try {
    const started = Date.now()
    let url: string | undefined
    while (url === undefined) {
      assert.equal(demo.exitCode, null, `the demo exited:\n${output}`)
      assert.ok(Date.now() - started < 30_000, `no URL printed:\n${output}`)
      url = /Open (http:\/\/127\.0\.0\.1:\d+)\//.exec(output)?.[1]
      await sleep(100)
    }

    const expected = [
      ['service:orders-api', 'kafka:orders'],
      ['kafka:orders', 'service:enricher'],
      ['kafka:orders', 'service:billing'],
      ['service:enricher', 'sqs:enriched-orders'],
      ['sqs:enriched-orders', 'service:notifier'],
      ['service:notifier', 'kinesis:notifications'],
      ['kinesis:notifications', 'service:archiver'],
      ['service:enricher', 'service:pricing'],
      ['service:pricing', 'nats:quotes.priced'],
      ['nats:quotes.priced', 'service:auditor'],
      ['service:archiver', 'bullmq:reports'],
      ['bullmq:reports', 'service:reporter'],
    ]
    // RabbitMQ starts in about 6 s on an idle machine, several times that on a loaded one: its hop gets longer.
    const rabbitMq = [
      ['service:notifier', 'rabbitmq:exchange:emails'],
      ['rabbitmq:exchange:emails', 'rabbitmq:mailer'],
      ['rabbitmq:mailer', 'service:mailer'],
    ]
    let summary: Summary = { nodes: [], edges: [] }
    const missing = (edges: string[][]) => edges.filter(([from, to]) => !summary.edges.some((e) => e.from === from && e.to === to && e.rate > 0))
    for (const [edges, seconds] of [
      [expected, 30],
      [rabbitMq, 60],
    ] as const) {
      while (missing(edges).length > 0) {
        assert.ok(Date.now() - started < seconds * 1000, `after ${seconds} s, edges still missing: ${JSON.stringify(missing(edges))}\n${output}`)
        await sleep(500)
        summary = (await (await fetch(`${url}/api/summary`)).json()) as Summary
      }
    }
    const page = await fetch(`${url}/`)
    assert.equal(page.status, 200)
    assert.match(await page.text(), /<html/i)
  } finally {
    if (demo.exitCode === null) demo.kill('SIGINT')
  }
  const [code] = (await once(demo, 'exit')) as [number | null]
  assert.equal(code, 0, output)
  assert.match(output, /stopping the demo/)
  await sleep(500)
  assert.deepEqual(demoServices().filter((pid) => !before.includes(pid)), [], 'no demo service outlives the demo')
})
