// The pipeline page: polls /api/summary, draws the map (map.js), the tables, and charts the
// selected edge with uPlot. Plain ES modules served by the agent, no build step.
import uPlot from '/vendor/uplot.js'
import { createMap } from '/map.js'

const POLL_MS = 2000
const $ = (id) => document.getElementById(id)

const state = { range: 60, selected: null, edgeChart: null, edgeChartId: null, fillingFrom: null, lagChart: null, lagKey: null }

// ---- formatting ----
function ms(seconds) {
  if (seconds == null) return '—'
  if (seconds >= 1) return `${seconds.toFixed(2)} s`
  const v = seconds * 1000
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ms`
}
function rate(r) {
  return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)
}
function bytes(n) {
  if (n == null) return '—'
  if (n >= 1048576) return `${(n / 1048576).toFixed(1)} MB`
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KB`
  return `${Math.round(n)} B`
}
const short = (id) => id.replace(/^service:/, '')
function cell(text, cls) {
  const td = document.createElement('td')
  td.textContent = text
  if (cls) td.className = cls
  return td
}

// ---- the map ----
// Short lines: the map is laid out left to right, so narrow labels let more of it fit across.
function nodeLines(n) {
  const kind = n.kind === 'service' ? 'service' : `${n.type} ${n.role}`
  const lines = [n.name, kind, `${rate(Math.max(n.inRate, n.outRate))} msg/s`]
  if (n.p99 != null) lines.push(`p99 ${ms(n.p99)}`)
  // A queue whose depth is sampled. BullMQ: the counts its users watch, failed jobs only when there are some;
  // another (RabbitMQ's ready messages): each state reported.
  if (n.jobs && n.type === 'bullmq') {
    lines.push(`${n.jobs.waiting ?? 0} waiting · ${n.jobs.delayed ?? 0} delayed`)
    if (n.jobs.failed) lines.push(`${n.jobs.failed} failed`)
  } else if (n.jobs) {
    lines.push(Object.entries(n.jobs).map(([state, count]) => `${count} ${state}`).join(' · '))
  }
  return lines
}
function edgeLines(e) {
  const lines = [`${rate(e.rate)} msg/s${e.count > 0 && e.filling === e.count ? ' (filling)' : ''}`, `p99 ${ms(e.latency?.p99)}`]
  if (e.group) lines.push(`group ${e.group}`)
  if (e.lag && e.lag.messages != null) lines.push(`lag ${e.lag.messages}`)
  if (e.failedSends) lines.push(`${e.failedSends} failed sends`)
  return lines
}
const map = createMap($('map'), { nodeLines, edgeLines, onSelect: select })

function renderMap(s) {
  $('empty').hidden = s.nodes.length > 0
  map.render(s.nodes, s.edges, state.selected)
}

// ---- tables ----
function renderPathways(s) {
  const body = $('pathways').tBodies[0]
  body.replaceChildren()
  if (s.pathways.length === 0) {
    const tr = document.createElement('tr')
    tr.append(cell('No pathways yet.', 'muted'))
    body.append(tr)
    return
  }
  for (const p of s.pathways) {
    const tr = document.createElement('tr')
    tr.dataset.pathwayId = p.id
    const path = cell(p.nodes.map(short).join(' → '), 'path')
    if (p.approximate) path.append(Object.assign(document.createElement('span'), { className: 'tag', textContent: '≈ summed over Kinesis segments' }))
    if (!p.complete) path.append(Object.assign(document.createElement('span'), { className: 'tag partial', textContent: 'upstream not seen' }))
    tr.append(path, cell(p.service), cell(rate(p.rate), 'num'), cell(ms(p.latency?.p50), 'num'), cell(ms(p.latency?.p95), 'num'), cell(ms(p.latency?.p99), 'num'))
    body.append(tr)
  }
}

// The partition's end, as lag is computed from it: the latest produce offset or the consumer's high watermark, whichever is larger.
// A JetStream consumer has none: its lag is the pending count its messages state.
function logEnd(r) {
  const known = [r.produceOffset, r.highWatermark].filter((v) => v != null)
  return known.length ? Math.max(...known) : null
}

function lagRow(r) {
  const tr = document.createElement('tr')
  tr.append(
    cell(r.group),
    cell(r.topic),
    cell(r.partition, 'num'),
    cell(r.transport === 'nats' ? '—' : (logEnd(r) ?? '?'), 'num'),
    cell(r.commitOffset ?? '—', 'num'),
    cell(r.lagMessages ?? '?', 'num'),
    cell(r.lagSeconds == null ? '?' : r.lagSeconds.toFixed(1), 'num'),
  )
  return tr
}

function renderLag(s) {
  const body = $('lag').tBodies[0]
  body.replaceChildren(...s.lag.map(lagRow))
  if (s.lag.length === 0) {
    const tr = document.createElement('tr')
    tr.append(cell('No Kafka commits or JetStream pending counts seen yet.', 'muted'))
    body.append(tr)
  }
}

const count = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`

function renderStatus(s) {
  const status = $('status')
  const services = s.nodes.filter((n) => n.kind === 'service').length
  const queues = s.nodes.length - services
  const last = s.status.lastPayloadAt ? `last payload ${Math.max(0, Math.round((s.now - s.status.lastPayloadAt) / 1000))} s ago` : 'no payload yet'
  const fleet = s.status.prometheus ? ` · the agents Prometheus at ${s.status.prometheus} scrapes` : ''
  // checkpoints tracers' own point caps dropped, as pathwise says in its payloads
  const capped = Object.values(s.status.points.droppedByTracers ?? {}).reduce((sum, n) => sum + n, 0)
  const dropped = capped > 0 ? ` · ${count(capped, 'checkpoint')} dropped by tracers' point caps` : ''
  status.textContent = `${count(services, 'service')} · ${count(queues, 'queue')} · ${count(s.edges.length, 'edge')} · ${count(s.status.payloads.accepted, 'payload')} (${s.status.payloads.rejected} rejected)${dropped} · ${last}${fleet}`
  status.className = 'status live'
  $('empty').textContent = s.status.prometheus
    ? `Waiting for data: no agent that Prometheus at ${s.status.prometheus} scrapes has reported yet.`
    : 'Waiting for data: point a tracer (pathwise or dd-trace with DD_DATA_STREAMS_ENABLED=true) at this agent.'
}

/** An answer other than 200: what the agent said, and for the fleet view the Prometheus it reads. */
class ViewError extends Error {
  constructor(status, answer) {
    super(typeof answer.error === 'string' ? answer.error : `${status}`)
    this.status = status
    this.prometheus = typeof answer.prometheus === 'string' ? answer.prometheus : null
  }
}

function renderDown(err) {
  const status = $('status')
  if (err instanceof ViewError && err.prometheus) {
    // The fleet view is up; the Prometheus it reads is what is wrong.
    const reason = err.message.replace(/^Prometheus at \S+ could not be read: /, '')
    const what = err.status === 503 ? `busy (${reason})` : `unreachable (${reason})`
    status.textContent = `Prometheus at ${err.prometheus} ${what}; retrying`
    $('empty').textContent = `The fleet view cannot read Prometheus at ${err.prometheus}: ${reason}`
  } else {
    status.textContent = `agent unreachable (${err.message}); retrying`
  }
  status.className = 'status down'
}

// ---- the selected edge ----
function select(id) {
  state.selected = id
  if (state.summary) renderMap(state.summary)
  refreshDetail()
}

// Clock times on the x axis: uPlot's default stacks dates under times, which crowds a narrow chart.
const clock = new Intl.DateTimeFormat([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })
const timeAxis = { space: 70, values: (_u, ticks) => ticks.map((t) => clock.format(new Date(t * 1000))) }

function chartWidth(container) {
  return Math.max(280, container.clientWidth || 360)
}

function latencyChart(detail) {
  const xs = detail.buckets.map((b) => b.start / 1000)
  const q = (k) => detail.buckets.map((b) => (b.latency ? b.latency[k] * 1000 : null))
  const data = [xs, q('p50'), q('p95'), q('p99'), detail.buckets.map((b) => b.rate)]
  const container = $('edge-chart')
  const filling = detail.buckets.find((b) => b.filling)
  state.fillingFrom = filling ? filling.start / 1000 : null
  if (state.edgeChart && state.edgeChartId === detail.edge.id) {
    state.edgeChart.setData(data)
    return
  }
  state.edgeChart?.destroy()
  state.edgeChartId = detail.edge.id
  state.edgeChart = new uPlot(
    {
      title: 'Edge latency (ms) and throughput',
      width: chartWidth(container),
      height: 220,
      scales: { x: { time: true }, ms: { auto: true }, rate: { auto: true } },
      series: [
        {},
        { label: 'p50', scale: 'ms', stroke: '#2f6feb', width: 1.5, spanGaps: true },
        { label: 'p95', scale: 'ms', stroke: '#d9730d', width: 1.5, spanGaps: true },
        { label: 'p99', scale: 'ms', stroke: '#cf222e', width: 2, spanGaps: true },
        { label: 'msg/s', scale: 'rate', stroke: '#8c959f', width: 1, dash: [4, 4], spanGaps: true },
      ],
      axes: [timeAxis, { scale: 'ms', label: 'ms', size: 50 }, { scale: 'rate', side: 1, label: 'msg/s', grid: { show: false }, size: 50 }],
      hooks: { draw: [shadeFilling] },
    },
    data,
    container,
  )
}

// Buckets still filling (not in the numbers beside the chart) are shaded.
function shadeFilling(u) {
  if (state.fillingFrom == null) return
  const left = Math.max(u.bbox.left, u.valToPos(state.fillingFrom, 'x', true))
  const right = u.bbox.left + u.bbox.width
  if (left >= right) return
  const ctx = u.ctx
  ctx.save()
  ctx.fillStyle = 'rgba(140, 149, 159, 0.18)'
  ctx.fillRect(left, u.bbox.top, right - left, u.bbox.height)
  ctx.fillStyle = '#57606a'
  ctx.font = `${12 * devicePixelRatio}px system-ui, sans-serif`
  ctx.fillText('filling', left + 4 * devicePixelRatio, u.bbox.top + 14 * devicePixelRatio)
  ctx.restore()
}

const PARTITION_COLOURS = ['#2f6feb', '#d9730d', '#1a7f37', '#8250df', '#cf222e', '#0598bc', '#bf8700', '#57606a']

function lagChart(detail) {
  const container = $('lag-chart')
  const history = detail.lagHistory
  const times = [...new Set(history.flatMap((h) => h.points.map(([t]) => t)))].sort((a, b) => a - b)
  const data = [times.map((t) => t / 1000), ...history.map((h) => {
    const at = new Map(h.points)
    return times.map((t) => at.get(t) ?? null)
  })]
  const key = `${detail.edge.id}|${history.map((h) => `${h.partition}/${h.cluster}`).join(',')}`
  if (state.lagChart && state.lagKey === key) {
    state.lagChart.setData(data)
    return
  }
  state.lagChart?.destroy()
  state.lagKey = key
  state.lagChart = new uPlot(
    {
      title: detail.edge.type === 'nats' ? 'Pending per stream (messages)' : 'Lag per partition (messages)',
      width: chartWidth(container),
      height: 180,
      scales: { x: { time: true } },
      series: [{}, ...history.map((h, i) => ({ label: `${/^\d+$/.test(h.partition) ? `p${h.partition}` : h.partition}${h.cluster ? ` ${h.cluster}` : ''}`, stroke: PARTITION_COLOURS[i % PARTITION_COLOURS.length], width: 1.5, spanGaps: true }))],
      axes: [timeAxis, { size: 50 }],
    },
    data,
    container,
  )
}

function renderDetail(detail) {
  const e = detail.edge
  $('detail-title').textContent = `${short(e.from)} → ${short(e.to)}`
  $('detail-hint').hidden = true
  const stats = [
    ['kind', `${e.kind} (${e.type})`],
    ...(e.group ? [['consumer group', e.group]] : []),
    ['throughput', `${rate(e.rate)} msg/s (${e.count} in range)`],
    ...(e.filling > 0 ? [['still filling', `${e.filling} msgs (shaded): ${e.filling === e.count ? 'the only ones yet' : 'not in the rate and latency yet'}`]] : []),
    ['latency p50 / p95 / p99', `${ms(e.latency?.p50)} / ${ms(e.latency?.p95)} / ${ms(e.latency?.p99)}`],
    ['payload p50 / p99', `${bytes(e.payloadSize?.p50)} / ${bytes(e.payloadSize?.p99)}`],
  ]
  $('detail-stats').replaceChildren(
    ...stats.flatMap(([k, v]) => [Object.assign(document.createElement('dt'), { textContent: k }), Object.assign(document.createElement('dd'), { textContent: v })]),
  )
  latencyChart(detail)
  const kafka = detail.lag.length > 0
  $('edge-lag').hidden = !kafka
  if (kafka) {
    const table = $('edge-lag-table')
    const head = document.createElement('tr')
    for (const h of ['Partition', 'Lag (msgs)', 'Lag (s)']) head.append(Object.assign(document.createElement('th'), { textContent: h, className: 'num' }))
    table.replaceChildren(
      head,
      ...detail.lag.map((r) => {
        const tr = document.createElement('tr')
        tr.append(cell(r.transport === 'nats' ? r.topic : r.partition, 'num'), cell(r.lagMessages ?? '?', 'num'), cell(r.lagSeconds == null ? '?' : r.lagSeconds.toFixed(1), 'num'))
        return tr
      }),
    )
    lagChart(detail)
  } else if (state.lagChart) {
    state.lagChart.destroy()
    state.lagChart = null
    state.lagKey = null
  }
}

async function refreshDetail() {
  const id = state.selected
  if (!id) return
  const res = await fetch(`/api/edge?id=${encodeURIComponent(id)}&range=${state.range}`)
  if (state.selected !== id) return
  if (res.status === 404) return
  renderDetail(await res.json())
}

// ---- polling ----
let timer = null
function schedule(delay) {
  clearTimeout(timer)
  timer = setTimeout(poll, delay)
}

async function poll() {
  try {
    const res = await fetch(`/api/summary?range=${state.range}`)
    if (!res.ok) throw new ViewError(res.status, await res.json().catch(() => ({})))
    const s = await res.json()
    state.summary = s
    renderStatus(s)
    renderMap(s)
    renderPathways(s)
    renderLag(s)
    await refreshDetail()
  } catch (err) {
    renderDown(err)
  } finally {
    schedule(POLL_MS)
  }
}

$('range').addEventListener('change', (event) => {
  state.range = Number(event.target.value)
  schedule(0)
})
poll()
