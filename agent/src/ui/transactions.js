// The transactions panel: polls /api/transactions at the page's range and lists, for each pair of
// checkpoints seen on the same transaction ids, the latency between them (p50/p95/p99 over the
// range) with its p95 per 10 s bucket drawn as a line. Names come from tracers: only ever text.
const POLL_MS = 5000
const section = document.getElementById('transactions-section')
const body = section.querySelector('tbody')
const note = section.querySelector('.hint')
const range = document.getElementById('range')

const duration = (s) => (s == null ? '—' : s >= 1 ? `${s.toFixed(2)} s` : `${(s * 1000).toFixed(s >= 0.1 ? 0 : 2)} ms`)

function td(text, className) {
  return Object.assign(document.createElement('td'), { textContent: text, className: className ?? '' })
}

/** A sparkline of the p95 per bucket: an SVG polyline scaled to the pair's own highest value. */
function sparkline(buckets) {
  const ns = 'http://www.w3.org/2000/svg'
  const svg = document.createElementNS(ns, 'svg')
  svg.setAttribute('viewBox', '0 0 100 20')
  svg.setAttribute('class', 'spark')
  const values = buckets.map((b) => b.latency?.p95 ?? 0)
  const top = Math.max(...values, 1e-9)
  const line = document.createElementNS(ns, 'polyline')
  line.setAttribute('points', values.map((v, i) => `${values.length === 1 ? 50 : (i * 100) / (values.length - 1)},${19 - (v / top) * 18}`).join(' '))
  svg.append(line)
  return svg
}

function render(view) {
  const rows = view.pairs.map((p) => {
    const tr = document.createElement('tr')
    const chart = td('')
    chart.append(sparkline(p.buckets))
    tr.append(td(p.from), td(p.to), td(String(p.count), 'num'), td(duration(p.latency?.p50), 'num'), td(duration(p.latency?.p95), 'num'), td(duration(p.latency?.p99), 'num'), chart)
    return tr
  })
  if (rows.length === 0) {
    const tr = document.createElement('tr')
    const empty = td('No transactions yet: call trackTransaction(id, checkpoint) at two or more checkpoints of the same ids.', 'empty')
    empty.colSpan = 7
    tr.append(empty)
    rows.push(tr)
  }
  body.replaceChildren(...rows)
  const c = view.counters
  note.textContent = `${view.ids.tracked} of at most ${view.ids.max} ids remembered · ${c.records} records · ${c.evictedIds} ids forgotten at the cap · ${c.duplicates} repeats · ${c.unknownCheckpoint + c.malformed} unreadable`
}

async function poll() {
  try {
    const res = await fetch(`/api/transactions?range=${range.value}`)
    if (res.ok) render(await res.json())
  } catch {
    // The main poll reports an unreachable agent; this panel keeps its last answer.
  } finally {
    setTimeout(poll, POLL_MS)
  }
}

range.addEventListener('change', () => void poll())
poll()
