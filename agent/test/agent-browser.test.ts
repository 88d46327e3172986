import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { after, before, test } from 'node:test'
import { chromium, type Browser, type Page } from 'playwright-core'
import { startAgent, type RunningAgent } from '../src/server.js'
import { pathwisePayload, postStats } from './helpers/agent-fixtures.js'
import { pipelineBucket } from './helpers/agent-pipeline.js'

/**
 * The page in a real browser (Debian's Chromium, driven by playwright-core) while data flows:
 * it draws the expected nodes and edges, an edge can be selected and shows its chart and lag,
 * and the page updates without reloading. The screenshot is left for a person to look at.
 */

const SCREENSHOT = 'test/artifacts/agent-page.png'
const BILLING_EDGE = 'kafka:orders>service:billing#billing'

let agent: RunningAgent
let browser: Browser
let page: Page
let flowing: NodeJS.Timeout | undefined
let flowStopped = false
let sent = 0
const pageErrors: string[] = []

/** One round of the pipeline's payloads for the bucket holding `at`, with Kafka offsets that keep growing. */
async function sendRound(at: number, seed: number): Promise<void> {
  const start = at - (at % 10_000)
  sent++
  for (const p of pipelineBucket(start, 30, seed).payloads) {
    const offset = (partition: number): number => 10_000 * (partition + 1) + sent * 50
    if (p.service === 'orders-api') {
      p.buckets[0].backlogs = [0, 1, 2].map((part) => ({ tags: [`partition:${part}`, 'topic:orders', 'type:kafka_produce'], value: offset(part) }))
    } else if (p.service === 'billing') {
      p.buckets[0].backlogs = [0, 1, 2].map((part) => ({ tags: ['consumer_group:billing', `partition:${part}`, 'topic:orders', 'type:kafka_commit'], value: offset(part) - 40 * part }))
    }
    const res = await postStats(agent.url, pathwisePayload(p.service, p.buckets))
    assert.equal(res.status, 200, res.text)
  }
}

before(async () => {
  agent = await startAgent({ port: 0, log: () => {} })
  // A minute of history, then a round every half second while the browser looks.
  for (let i = 6; i >= 1; i--) await sendRound(Date.now() - i * 10_000, 10 + i)
  const flow = (): void => {
    // A round still in flight when the test ends must not schedule another.
    if (!flowStopped) flowing = setTimeout(() => sendRound(Date.now(), sent).then(flow, flow), 500)
  }
  flow()
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
  page.on('pageerror', (err) => pageErrors.push(err.message))
  page.on('console', (msg) => {
    if (msg.type() === 'error') pageErrors.push(msg.text())
  })
})

after(async () => {
  flowStopped = true
  clearTimeout(flowing)
  await browser?.close()
  await agent?.close()
})

test('the page draws the expected nodes and edges, labelled with throughput and p99', async () => {
  await page.goto(agent.url)
  await page.waitForSelector('[data-node-id="service:aggregator"]', { timeout: 10_000 })
  const nodes = await page.$$eval('[data-node-id]', (els) => els.map((e) => e.getAttribute('data-node-id')).sort())
  assert.deepEqual(nodes, [
    'kafka:orders',
    'kinesis:clicks',
    'service:aggregator',
    'service:analytics',
    'service:billing',
    'service:mailer',
    'service:orders-api',
    'sqs:invoices',
  ])
  const edges = await page.$$eval('[data-edge-id]', (els) => els.map((e) => e.getAttribute('data-edge-id')).sort())
  assert.equal(edges.length, 7)
  assert.ok(edges.includes(BILLING_EDGE))
  const label = await page.textContent(`[data-edge-id="${BILLING_EDGE}"] .label`)
  assert.match(label ?? '', /\d msg\/s · p99 [\d.]+ ms/)
  assert.match(label ?? '', /group billing/)
  const node = await page.textContent('[data-node-id="service:mailer"]')
  assert.match(node ?? '', /mailer.*service.*msg\/s · p99/)
  // The layout library placed the nodes: the first producer left of its topic, the topic left of its consumers.
  const x = (id: string): Promise<number> => page.$eval(`[data-node-id="${id}"]`, (e) => e.getBoundingClientRect().x)
  assert.ok((await x('service:orders-api')) < (await x('kafka:orders')))
  assert.ok((await x('kafka:orders')) < (await x('service:billing')))
})

test('the pathways table lists end-to-end latency per consumer', async () => {
  await page.waitForSelector('#pathways tbody tr[data-pathway-id]')
  const rows = await page.$$eval('#pathways tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ''))
  assert.equal(rows.length, 4)
  assert.ok(rows.some((r) => r.includes('orders-api → kafka:orders → billing → sqs:invoices → mailer') && /ms/.test(r)))
  assert.ok(rows.some((r) => r.includes('aggregator') && r.includes('summed over Kinesis segments')))
})

test('selecting an edge shows its latency chart and, for Kafka, the lag per partition', async () => {
  await page.click(`[data-edge-id="${BILLING_EDGE}"] .label`)
  await page.waitForSelector('#edge-chart .uplot canvas', { timeout: 10_000 })
  assert.equal(await page.textContent('#detail-title'), 'kafka:orders → billing')
  assert.equal(await page.getAttribute(`[data-edge-id="${BILLING_EDGE}"]`, 'class'), 'edge consume selected')
  const legend = await page.$$eval('#edge-chart .u-legend .u-label', (els) => els.map((e) => e.textContent))
  assert.deepEqual(legend.slice(1), ['p50', 'p95', 'p99', 'msg/s'])
  assert.ok(await page.isVisible('#edge-lag'))
  await page.waitForSelector('#lag-chart .uplot canvas')
  const lagRows = await page.$$eval('#edge-lag-table tr', (trs) => trs.slice(1).map((tr) => [...tr.children].map((td) => td.textContent ?? '')))
  assert.deepEqual(
    lagRows.map((r) => r[0]),
    ['0', '1', '2'],
  )
  // Partition p's commits trail its produce offset by 40·p more than partition 0's (whichever payload of a round came last).
  const lags = lagRows.map((r) => Number(r[1]))
  assert.deepEqual([lags[1] - lags[0], lags[2] - lags[0]], [40, 80])
})

test('it updates without reloading', async () => {
  await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42))
  const read = (): Promise<string> => page.textContent('#status').then((t) => t ?? '')
  const before = await read()
  await page.waitForFunction((old) => document.getElementById('status')?.textContent !== old, before, { timeout: 10_000 })
  assert.equal(await page.evaluate(() => (window as unknown as { marker: number }).marker), 42)
  // The chart kept following the selected edge.
  assert.ok(await page.isVisible('#edge-chart .uplot'))
  mkdirSync('test/artifacts', { recursive: true })
  await page.screenshot({ path: SCREENSHOT, fullPage: true })
  assert.deepEqual(pageErrors, [])
})
