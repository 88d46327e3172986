// The pipeline page: polls /api/summary, lays the graph out with dagre and draws it as SVG,
// charts the selected edge with uPlot. Plain ES modules served by the agent, no build step.
import dagre from '/vendor/dagre.js'
import uPlot from '/vendor/uplot.js'

const POLL_MS = 2000
const SVG_NS = 'http://www.w3.org/2000/svg'
const $ = (id) => document.getElementById(id)

const state = { range: 60, selected: null, edgeChart: null, edgeChartId: null, lagChart: null, lagKey: null }

// ---- formatting ----
function ms(seconds) {
  if (seconds == null) return '–'
  if (seconds >= 1) return `${seconds.toFixed(2)} s`
  const v = seconds * 1000
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ms`
}
function rate(r) {
  return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)
}
function bytes(n) {
  if (n == null) return '–'
  if (n >= 1048576) return `${(n / 1048576).toFixed(1)} MB`
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KB`
  return `${Math.round(n)} B`
}
const short = (id) => id.replace(/^service:/, '')
function el(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag)
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v)
  if (text !== undefined) node.textContent = text
  return node
}
function cell(text, cls) {
  const td = document.createElement('td')
  td.textContent = text
  if (cls) td.className = cls
  return td
}

const measure = document.createElement('canvas').getContext('2d')
function textWidth(text, font) {
  measure.font = font
  return measure.measureText(text).width
}

// ---- the map ----
function nodeLines(n) {
  const kind = n.kind === 'service' ? 'service' : `${n.type} ${n.role}`
  const throughput = Math.max(n.inRate, n.outRate)
  return [n.name, kind, `${rate(throughput)} msg/s${n.p99 == null ? '' : ` · p99 ${ms(n.p99)}`}`]
}
function edgeLines(e) {
  const lines = [`${rate(e.rate)} msg/s · p99 ${ms(e.latency?.p99)}`]
  if (e.group) lines.push(`group ${e.group}${e.lag && e.lag.messages != null ? ` · lag ${e.lag.messages}` : ''}`)
  return lines
}

// A B-spline through dagre's bend points, as d3's curveBasis draws it.
function basis(points) {
  const p = points.map((q) => [q.x, q.y])
  if (p.length < 3) return `M${p.map((q) => q.join(',')).join('L')}`
  let [x0, y0] = p[0]
  let [x1, y1] = p[1]
  let d = `M${x0},${y0}L${(5 * x0 + x1) / 6},${(5 * y0 + y1) / 6}`
  const bezier = (x, y) => {
    d += `C${(2 * x0 + x1) / 3},${(2 * y0 + y1) / 3} ${(x0 + 2 * x1) / 3},${(y0 + 2 * y1) / 3} ${(x0 + 4 * x1 + x) / 6},${(y0 + 4 * y1 + y) / 6}`
    ;[x0, y0, x1, y1] = [x1, y1, x, y]
  }
  for (let i = 2; i < p.length; i++) bezier(p[i][0], p[i][1])
  bezier(x1, y1)
  return `${d}L${x1},${y1}`
}

function renderMap(s) {
  const svg = $('map')
  svg.replaceChildren()
  $('empty').hidden = s.nodes.length > 0
  if (s.nodes.length === 0) return
  const g = new dagre.graphlib.Graph({ multigraph: true })
  g.setGraph({ rankdir: 'LR', nodesep: 28, ranksep: 56, edgesep: 24, marginx: 8, marginy: 8 })
  g.setDefaultEdgeLabel(() => ({}))
  for (const n of s.nodes) {
    const lines = nodeLines(n)
    const width = Math.max(textWidth(lines[0], '600 13px system-ui'), textWidth(lines[2], '11px system-ui')) + 28
    g.setNode(n.id, { width: Math.max(130, width), height: 62, data: n, lines })
  }
  for (const e of s.edges) {
    const lines = edgeLines(e)
    const width = Math.max(...lines.map((l) => textWidth(l, '11px system-ui'))) + 14
    g.setEdge(e.from, e.to, { width, height: lines.length * 14 + 6, labelpos: 'c', data: e, lines }, e.id)
  }
  dagre.layout(g)
  const { width, height } = g.graph()
  // Natural size when it fits; scaled down to the panel's width when it does not.
  const scale = Math.min(1, (svg.clientWidth || width) / width)
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`)
  svg.style.height = `${Math.ceil(height * scale)}px`

  const defs = el('defs')
  for (const id of ['arrow', 'arrow-selected']) {
    const marker = el('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' })
    marker.append(el('path', { d: 'M0,0L10,5L0,10z' }))
    defs.append(marker)
  }
  svg.append(defs)

  for (const ref of g.edges()) {
    const { points, x, y, width: w, height: h, data: e, lines } = g.edge(ref)
    const selected = e.id === state.selected
    const group = el('g', { class: `edge ${e.kind}${selected ? ' selected' : ''}${e.count === 0 ? ' idle' : ''}`, 'data-edge-id': e.id })
    const d = basis(points)
    group.append(el('path', { class: 'line', d, 'marker-end': `url(#${selected ? 'arrow-selected' : 'arrow'})` }))
    group.append(el('path', { class: 'hit', d }))
    const label = el('g', { class: 'label', transform: `translate(${x - w / 2},${y - h / 2})` })
    label.append(el('rect', { width: w, height: h, rx: 4 }))
    lines.forEach((line, i) => label.append(el('text', { x: 7, y: 14 + i * 14 }, line)))
    group.append(label)
    group.append(el('title', {}, `${short(e.from)} → ${short(e.to)}`))
    group.addEventListener('click', () => select(e.id))
    svg.append(group)
  }
  for (const id of g.nodes()) {
    const { x, y, width: w, height: h, data: n, lines } = g.node(id)
    const group = el('g', { class: `node ${n.kind} ${n.type ?? ''}`, 'data-node-id': n.id, transform: `translate(${x - w / 2},${y - h / 2})` })
    group.append(el('rect', { width: w, height: h, rx: n.kind === 'service' ? 6 : 18 }))
    group.append(el('text', { class: 'name', x: 12, y: 18 }, lines[0]))
    group.append(el('text', { class: 'kind', x: 12, y: 34 }, lines[1]))
    group.append(el('text', { class: 'stats', x: 12, y: 51 }, lines[2]))
    svg.append(group)
  }
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

function lagRow(r) {
  const tr = document.createElement('tr')
  tr.append(
    cell(r.group),
    cell(r.topic),
    cell(r.partition, 'num'),
    cell(r.produceOffset ?? '?', 'num'),
    cell(String(r.commitOffset), 'num'),
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
    tr.append(cell('No Kafka commits seen yet.', 'muted'))
    body.append(tr)
  }
}

function renderStatus(s) {
  const status = $('status')
  const services = s.nodes.filter((n) => n.kind === 'service').length
  const queues = s.nodes.length - services
  const last = s.status.lastPayloadAt ? `last payload ${Math.max(0, Math.round((s.now - s.status.lastPayloadAt) / 1000))} s ago` : 'no payload yet'
  status.textContent = `${services} services · ${queues} queues · ${s.edges.length} edges · ${s.status.payloads.accepted} payloads (${s.status.payloads.rejected} rejected) · ${last}`
  status.className = 'status live'
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
    },
    data,
    container,
  )
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
  const key = `${detail.edge.id}|${history.map((h) => h.partition).join(',')}`
  if (state.lagChart && state.lagKey === key) {
    state.lagChart.setData(data)
    return
  }
  state.lagChart?.destroy()
  state.lagKey = key
  state.lagChart = new uPlot(
    {
      title: 'Lag per partition (messages)',
      width: chartWidth(container),
      height: 180,
      scales: { x: { time: true } },
      series: [{}, ...history.map((h, i) => ({ label: `p${h.partition}`, stroke: PARTITION_COLOURS[i % PARTITION_COLOURS.length], width: 1.5, spanGaps: true }))],
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
        tr.append(cell(r.partition, 'num'), cell(r.lagMessages ?? '?', 'num'), cell(r.lagSeconds == null ? '?' : r.lagSeconds.toFixed(1), 'num'))
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
    if (!res.ok) throw new Error(`${res.status}`)
    const s = await res.json()
    state.summary = s
    renderStatus(s)
    renderMap(s)
    renderPathways(s)
    renderLag(s)
    await refreshDetail()
  } catch (err) {
    const status = $('status')
    status.textContent = `agent unreachable (${err.message}); retrying`
    status.className = 'status down'
  } finally {
    schedule(POLL_MS)
  }
}

$('range').addEventListener('change', (event) => {
  state.range = Number(event.target.value)
  schedule(0)
})
poll()
