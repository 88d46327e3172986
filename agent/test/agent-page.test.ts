/**
 * The page in a real browser (Debian's Chromium, driven by playwright-core) while data flows:
 * it draws the expected nodes and edges, an edge can be selected and shows its chart and lag,
 * and the page updates without reloading. Then a wide pipeline (a dozen services, seven queues)
 * at two common screen sizes: every label is readable (12 CSS px or more as rendered), the map
 * fills its panel, and it pans and zooms. The screenshots are left for a person to look at.
 */
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { after, before, test } from 'node:test'
import { chromium, type Browser, type Page } from 'playwright-core'
import type { Summary } from '../src/views/api.js'
import { startAgent, type RunningAgent } from '../src/server.js'
import { getJson, pathwisePayload, postStats, type PointSpec } from './helpers/agent-fixtures.js'
import { latencies, pipelineBucket } from './helpers/agent-pipeline.js'
import { startFakePrometheus } from './helpers/fake-prometheus.js'

const SCREENSHOT = 'test/artifacts/agent-page.png'
const BILLING_EDGE = 'kafka:orders>service:billing#billing'
const VIEWPORTS = [
  { width: 1366, height: 768 },
  { width: 1920, height: 1080 },
]
/** The smallest label size a person reads without effort, in CSS px as rendered. */
const MIN_LABEL_PX = 12

let agent: RunningAgent
let wide: RunningAgent
let demo: RunningAgent
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
  wide = await startAgent({ port: 0, log: () => {}, now: () => WIDE_NOW })
  for (const p of widePipeline()) assert.equal((await postStats(wide.url, p)).status, 200)
  demo = await startAgent({ port: 0, log: () => {}, now: () => WIDE_NOW })
  for (const p of demoPipeline()) assert.equal((await postStats(demo.url, p)).status, 200)
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
  await wide?.close()
  await demo?.close()
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
  assert.match(label ?? '', /\d msg\/sp99 [\d.]+ msgroup billinglag \d+$/)
  const node = await page.textContent('[data-node-id="service:mailer"]')
  assert.match(node ?? '', /^mailerservice[\d.]+ msg\/sp99 [\d.]+ ms$/)
  // The layout library placed the nodes: the first producer left of its topic, the topic left of its consumers (at this size, in one row).
  const x = (id: string): Promise<number> => page.evaluate((sel) => document.querySelector(sel)!.getBoundingClientRect().x, `[data-node-id="${id}"]`)
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

// ---- a wide pipeline, on a clock that stands still ----

/** 5 s into a bucket: the buckets that ended 12 s ago or more are settled (range.ts); the one before this is still filling. */
const WIDE_NOW = Date.now() - (Date.now() % 10_000) + 5_000
const BUCKET = (back: number): number => WIDE_NOW - 5_000 - back * 10_000

/** A hop: [service, direction, queue type, topic (or `exchange:<name>`, a RabbitMQ publish to an exchange), group, the hop upstream (index)]. */
type Hop = [string, 'out' | 'in', string, string, string, number]

const HOPS: Hop[] = [
  ['web-gateway', 'out', 'kafka', 'orders', '', -1],
  ['billing', 'in', 'kafka', 'orders', 'billing', 0],
  ['inventory', 'in', 'kafka', 'orders', 'inventory', 0],
  ['fraud-check', 'in', 'kafka', 'orders', 'fraud', 0],
  ['billing', 'out', 'sqs', 'invoices', '', 1],
  ['mailer', 'in', 'sqs', 'invoices', '', 4],
  ['inventory', 'out', 'kafka', 'stock-updates', '', 2],
  ['warehouse', 'in', 'kafka', 'stock-updates', 'warehouse', 6],
  ['search-indexer', 'in', 'kafka', 'stock-updates', 'search', 6],
  ['analytics', 'in', 'kafka', 'stock-updates', 'analytics', 6],
  ['fraud-check', 'out', 'kafka', 'fraud-alerts', '', 3],
  ['notifier', 'in', 'kafka', 'fraud-alerts', 'alerts', 10],
  ['notifier', 'out', 'sqs', 'notifications', '', 11],
  ['push-sender', 'in', 'sqs', 'notifications', '', 12],
  ['analytics', 'out', 'kinesis', 'clickstream', '', 9],
  ['aggregator', 'in', 'kinesis', 'clickstream', '', -1],
  ['warehouse', 'out', 'sqs', 'shipments', '', 7],
  ['shipping', 'in', 'sqs', 'shipments', '', 16],
]

type Backlog = { tags: string[]; value: number }

/**
 * The payloads of a pipeline of hops over the five buckets before the clock: `messages` says how
 * many a hop has in a bucket (0: none), `backlogs` what offsets its service reports then; consumers'
 * edge latencies are drawn from 10 ms to `slowest` s.
 */
function pipelinePayloads(
  hops: Hop[],
  { base, slowest }: { base: number; slowest: number },
  messages: (hop: number, back: number) => number,
  backlogs: (hop: Hop, back: number) => Backlog[] = () => [],
): Uint8Array[] {
  const hashOf = (i: number): bigint => BigInt(base * (i + 1))
  const perService = new Map<string, Array<{ startMs: number; points: PointSpec[]; backlogs: Backlog[] }>>()
  for (let back = 5; back >= 1; back--) {
    const startMs = BUCKET(back)
    hops.forEach((hop, i) => {
      const [service, direction, type, topic, group, up] = hop
      const n = messages(i, back)
      if (n === 0) return
      const tags = [`direction:${direction}`, ...(topic ? [topic.startsWith('exchange:') ? topic : `topic:${topic}`] : []), `type:${type}`, ...(group ? [`group:${group}`] : [])]
      // A first producer's edge latency is 0; the others' drawn from the seed.
      const edge = up < 0 && direction === 'out' ? new Array<number>(n).fill(0) : latencies(i * 10 + back, n, direction === 'in' ? 0.01 : 0.001, direction === 'in' ? slowest : 0.004)
      let buckets = perService.get(service)
      if (!buckets) perService.set(service, (buckets = []))
      let bucket = buckets.find((b) => b.startMs === startMs)
      if (!bucket) buckets.push((bucket = { startMs, points: [], backlogs: [] }))
      bucket.points.push({ tags, hash: hashOf(i), parent: up < 0 ? 0n : hashOf(up), edge, pathway: edge.map((v) => v + 0.05 * i) })
      bucket.backlogs.push(...backlogs(hop, back))
    })
  }
  return [...perService].map(([service, buckets]) => pathwisePayload(service, buckets))
}

/**
 * Four settled buckets and one still filling. The first producer starts late in the oldest
 * bucket (120 messages), and the hops after it take those in the next one: both ends of each
 * queue get the same 1020 messages over the settled buckets, their first buckets 10 s apart.
 */
function widePipeline(): Uint8Array[] {
  return pipelinePayloads(HOPS, { base: 0x1000, slowest: 0.08 }, (i, back) => (i === 0 ? (back === 5 ? 120 : 300) : back === 5 ? 0 : back === 4 ? 420 : 300))
}

/**
 * `npm start`'s pipeline (demo/run.ts), as its nine services report it: orders-api → kafka:orders →
 * enricher → sqs:enriched-orders → notifier → kinesis:notifications → archiver → bullmq:reports →
 * reporter; enricher → (HTTP) pricing → nats:quotes.priced → auditor; notifier → the RabbitMQ
 * exchange emails → rabbitmq:mailer → mailer; and billing on kafka:orders, lagging. 16 nodes.
 */
function demoPipeline(): Uint8Array[] {
  const hops: Hop[] = [
    ['orders-api', 'out', 'kafka', 'orders', '', -1],
    ['enricher', 'in', 'kafka', 'orders', 'enricher', 0],
    ['enricher', 'out', 'sqs', 'enriched-orders', '', 1],
    ['notifier', 'in', 'sqs', 'enriched-orders', '', 2],
    ['notifier', 'out', 'kinesis', 'notifications', '', 3],
    ['archiver', 'in', 'kinesis', 'notifications', '', -1],
    ['billing', 'in', 'kafka', 'orders', 'billing', 0],
    ['enricher', 'out', 'http', '', '', 1],
    ['pricing', 'in', 'http', '', '', 7],
    ['pricing', 'out', 'nats', 'quotes.priced', '', 8],
    ['auditor', 'in', 'nats', 'quotes.priced', 'auditor', 9],
    ['notifier', 'out', 'rabbitmq', 'exchange:emails', '', 3],
    ['mailer', 'in', 'rabbitmq', 'mailer', '', 11],
    ['archiver', 'out', 'bullmq', 'reports', '', 5],
    ['reporter', 'in', 'bullmq', 'reports', '', 13],
  ]
  const depth = (type: string, queue: string, state: string, value: number) => ({ tags: ['type:queue_depth', `queue_type:${type}`, `topic:${queue}`, `state:${state}`], value })
  return pipelinePayloads(
    hops,
    { base: 0x2000, slowest: 0.9 },
    (i) => 40 + 7 * i,
    ([service, , , , group], back) => {
      const offset = 100_000 + 4_000 * (5 - back)
      if (service === 'orders-api') return [0, 1, 2].map((p) => ({ tags: [`partition:${p}`, 'topic:orders', 'type:kafka_produce'], value: offset }))
      if (group === 'auditor') return [{ tags: ['consumer_group:auditor', 'stream:QUOTES', 'type:nats_pending'], value: 40 * (6 - back) }]
      if (service === 'mailer') return [depth('rabbitmq', 'mailer', 'ready', 12)]
      if (service === 'reporter') return [depth('bullmq', 'reports', 'waiting', 3), depth('bullmq', 'reports', 'delayed', 1)]
      return group ? [0, 1, 2].map((p) => ({ tags: [`consumer_group:${group}`, `partition:${p}`, 'topic:orders', 'type:kafka_commit'], value: offset - (group === 'billing' ? 25_000 : 3) })) : []
    },
  )
}

/** Nodes whose box is not wholly inside the map's panel. */
function nodesOutside(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const area = document.querySelector('#map')!.getBoundingClientRect()
    return [...document.querySelectorAll('[data-node-id]')]
      .filter((n) => {
        const b = n.getBoundingClientRect()
        return b.left < area.left || b.right > area.right || b.top < area.top || b.bottom > area.bottom
      })
      .map((n) => n.getAttribute('data-node-id') ?? '')
  })
}

interface MapMeasure {
  /** Rendered size of each label text: its font size times the SVG's scale, and its box's height. */
  labels: Array<{ text: string; fontPx: number; boxPx: number }>
  svg: { width: number; height: number }
  panel: { width: number; height: number }
  /** Labels whose box lies inside the SVG's visible area. */
  visible: number
}

function measureMap(page: Page): Promise<MapMeasure> {
  return page.evaluate(() => {
    const svg = document.querySelector('#map') as SVGSVGElement
    const texts = [...svg.querySelectorAll<SVGTextElement>('[data-node-id] text, [data-edge-id] text')]
    const area = svg.getBoundingClientRect()
    const panel = (document.querySelector('#map-panel') as HTMLElement).getBoundingClientRect()
    let visible = 0
    const labels = texts.map((t) => {
      const box = t.getBoundingClientRect()
      if (box.left >= area.left && box.right <= area.right && box.top >= area.top && box.bottom <= area.bottom) visible++
      const scale = t.getScreenCTM()?.a ?? 1
      return { text: t.textContent ?? '', fontPx: parseFloat(getComputedStyle(t).fontSize) * scale, boxPx: box.height }
    })
    return { labels, svg: { width: area.width, height: area.height }, panel: { width: panel.width, height: panel.height }, visible }
  })
}

const smallest = (m: MapMeasure): { text: string; fontPx: number; boxPx: number } => m.labels.reduce((a, b) => (b.fontPx < a.fontPx ? b : a))

for (const viewport of VIEWPORTS) {
  const size = `${viewport.width}x${viewport.height}`
  test(`a wide pipeline at ${size}: labels of 12 px or more, the map as high as its panel, pan and zoom`, async () => {
    const view = await browser.newPage({ viewport })
    try {
      const errors: string[] = []
      view.on('pageerror', (err) => errors.push(err.message))
      await view.goto(wide.url)
      await view.waitForSelector('[data-node-id="service:shipping"]', { timeout: 10_000 })
      assert.equal(await view.$$eval('[data-node-id]', (els) => els.length), 19)
      assert.equal(await view.$$eval('[data-edge-id]', (els) => els.length), 18)
      const fit = await measureMap(view)
      const small = smallest(fit)
      console.log(`${size}: smallest label ${small.fontPx.toFixed(1)} px font (${small.boxPx.toFixed(1)} px box), "${small.text}"; map ${fit.svg.width}×${fit.svg.height} in a panel ${fit.panel.width}×${fit.panel.height}; ${fit.visible}/${fit.labels.length} labels in view`)
      mkdirSync('test/artifacts', { recursive: true })
      await view.screenshot({ path: `test/artifacts/agent-map-${size}.png` })
      for (const l of fit.labels) assert.ok(l.fontPx >= MIN_LABEL_PX && l.boxPx >= MIN_LABEL_PX, `"${l.text}": ${l.fontPx} px font, ${l.boxPx} px box`)
      // The map fills its panel, which takes most of the screen's height below the header.
      assert.ok(fit.svg.height >= fit.panel.height - 60, `map ${fit.svg.height} px high in a panel of ${fit.panel.height}`)
      assert.ok(fit.panel.height >= viewport.height * 0.55, `panel ${fit.panel.height} px high at ${size}`)
      assert.ok(fit.visible > 0)

      // Zooming in makes labels bigger; zooming out stops where labels would go under 12 px.
      await view.click('#map-zoom-in')
      const zoomed = smallest(await measureMap(view))
      assert.ok(zoomed.fontPx > small.fontPx * 1.1, `zoomed in: ${zoomed.fontPx} vs ${small.fontPx}`)
      for (let i = 0; i < 8; i++) await view.click('#map-zoom-out')
      assert.ok(smallest(await measureMap(view)).fontPx >= MIN_LABEL_PX - 0.01)
      // The wheel zooms too, a drag pans.
      const box = (await view.$('#map'))!.boundingBox()
      const { x, y, width, height } = (await box)!
      await view.mouse.move(x + width / 2, y + height / 2)
      await view.mouse.wheel(0, -400)
      assert.ok(smallest(await measureMap(view)).fontPx > small.fontPx, 'the wheel zooms in')
      // Queried and measured in one task: a poll redraws the map between two tasks.
      const at = (): Promise<number> => view.evaluate(() => document.querySelector('[data-node-id="service:web-gateway"]')!.getBoundingClientRect().x)
      const x0 = await at()
      await view.mouse.move(x + width / 2, y + height - 20)
      await view.mouse.down()
      await view.mouse.move(x + width / 2 - 150, y + height - 20, { steps: 5 })
      await view.mouse.up()
      const x1 = await at()
      assert.ok(Math.abs(x1 - (x0 - 150)) < 2, `a drag pans the map: ${x0} → ${x1}`)
      await view.click('#map-fit')
      assert.ok(Math.abs(smallest(await measureMap(view)).fontPx - small.fontPx) < 0.01, 'fit goes back to the default')
      assert.deepEqual(errors, [])
    } finally {
      await view.close()
    }
  })
}

for (const viewport of VIEWPORTS) {
  const size = `${viewport.width}x${viewport.height}`
  test(`npm start's pipeline at ${size}: every node inside the map after load and after Fit, labels of 10 px or more`, async () => {
    const view = await browser.newPage({ viewport })
    try {
      await view.goto(demo.url)
      await view.waitForSelector('[data-node-id="service:reporter"]', { timeout: 10_000 })
      assert.equal(await view.$$eval('[data-node-id]', (els) => els.length), 16)
      // Queue depths on their nodes: BullMQ's jobs as its users count them, RabbitMQ's ready messages as such.
      const text = (id: string) => view.$eval(`[data-node-id="${id}"]`, (el) => el.textContent ?? '')
      assert.match(await text('bullmq:reports'), /3 waiting · 1 delayed/)
      assert.match(await text('rabbitmq:mailer'), /12 ready/)
      assert.doesNotMatch(await text('rabbitmq:mailer'), /waiting/)
      const fit = await measureMap(view)
      const small = smallest(fit)
      console.log(`${size}: demo map ${fit.svg.width}×${fit.svg.height}, smallest label ${small.fontPx.toFixed(1)} px`)
      await view.screenshot({ path: `test/artifacts/agent-demo-map-${size}.png` })
      assert.deepEqual(await nodesOutside(view), [], 'after load')
      assert.ok(small.fontPx >= 10, `"${small.text}" at ${small.fontPx} px`)
      // Zoomed in and panned away, Fit brings the whole pipeline back.
      for (let i = 0; i < 3; i++) await view.click('#map-zoom-in')
      assert.notDeepEqual(await nodesOutside(view), [], 'zoomed in, some nodes leave the panel')
      await view.click('#map-fit')
      assert.deepEqual(await nodesOutside(view), [], 'after Fit')
    } finally {
      await view.close()
    }
  })
}

test("the header counts what the map shows, one queue as one; a fleet view whose Prometheus stops says so and names it", async () => {
  // A Prometheus stand-in with one producer's series: one service, one queue, one edge.
  const labels = '"service":"orders-api","env":"test","pathway_hash":"00000000000000a1","parent_hash":"0000000000000000","direction":"out","type":"kafka","topic":"orders"'
  const fake = await startFakePrometheus((path, form) => {
    const query = form.get('query') ?? ''
    const t = Number(form.get('time') ?? form.get('end')) || Date.now() / 1000
    const one = (value: string): string => `{"status":"success","data":{"resultType":"vector","result":[{"metric":{${labels}},"value":[${t},"${value}"]}]}}`
    if (path.startsWith('/api/v1/query_range')) return '{"status":"success","data":{"resultType":"matrix","result":[]}}'
    if (query.startsWith('((pathwise_edge_latency_seconds_count')) return one('120')
    if (query.startsWith('sum by (result)')) return '{"status":"success","data":{"resultType":"vector","result":[{"metric":{"result":"accepted"},"value":[1,"1"]}]}}'
    return '{"status":"success","data":{"resultType":"vector","result":[]}}'
  })
  const fleet = await startAgent({ port: 0, log: () => {}, prometheus: fake.url })
  const view = await browser.newPage({ viewport: VIEWPORTS[0] })
  try {
    await view.goto(fleet.url)
    await view.waitForSelector('[data-node-id="kafka:orders"]', { timeout: 10_000 })
    assert.match((await view.textContent('#status')) ?? '', new RegExp(`^1 service · 1 queue · 1 edge · 1 payload \\(0 rejected\\) · no payload yet · the agents Prometheus at ${fake.url} scrapes$`))
    await fake.close()
    await view.waitForFunction(() => document.getElementById('status')?.className === 'status down', undefined, { timeout: 10_000 })
    const status = (await view.textContent('#status')) ?? ''
    assert.match(status, new RegExp(`^Prometheus at ${fake.url} unreachable \\(fetch failed \\(connect ECONNREFUSED [^)]*\\)\\); retrying$`))
    assert.doesNotMatch(status, /agent unreachable/)
    assert.doesNotMatch((await view.textContent('#empty')) ?? '', /point a tracer/)
    await view.screenshot({ path: 'test/artifacts/agent-page-prometheus-down.png' })
  } finally {
    await view.close()
    await fleet.close()
    await fake.close()
  }
})

test('a first producer edge, which has no latency, shows "—"; both ends of a queue show the same rate', async () => {
  const view = await browser.newPage({ viewport: VIEWPORTS[0] })
  try {
    await view.goto(wide.url)
    await view.waitForSelector('[data-edge-id="service:web-gateway>kafka:orders"]', { timeout: 10_000 })
    const label = (id: string): Promise<string> => view.$$eval(`[data-edge-id="${id}"] .label text`, (ts) => ts.map((t) => t.textContent).join(' | '))
    const produce = await label('service:web-gateway>kafka:orders')
    assert.match(produce, /^[\d.]+ msg\/s \| p99 —$/)
    assert.match(await label('service:billing>sqs:invoices'), /^[\d.]+ msg\/s \| p99 [\d.]+ ms$/)
    // 1020 messages into kafka:orders and out to each group over the same 40 s.
    const rateOf = (text: string): string => /^([\d.]+) msg\/s/.exec(text)?.[1] ?? ''
    assert.equal(rateOf(produce), '25.5')
    for (const group of ['billing', 'inventory', 'fraud']) {
      const consumer = HOPS.find((h) => h[4] === group)![0]
      assert.equal(rateOf(await label(`kafka:orders>service:${consumer}#${group}`)), '25.5', group)
    }
    const s = await getJson<Summary>(wide.url, '/api/summary')
    const into = s.nodes.find((n) => n.id === 'kafka:orders')!
    assert.ok(Math.abs(into.inRate * 3 - into.outRate) < 1e-9, `${into.inRate} in, ${into.outRate} out over three groups`)
  } finally {
    await view.close()
  }
})
