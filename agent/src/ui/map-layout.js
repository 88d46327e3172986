// Where the map's nodes and edges go, chosen for the panel they are drawn in. dagre lays the graph
// out left to right and top to bottom; a left-to-right layout too wide for the panel is also wrapped
// into rows, as text wraps: each row takes a stretch of the ranks, as high as what it holds, and an
// edge from the end of a row to the next goes down between them and back to the row's start. The arrangement chosen is the
// first of left to right, top to bottom, and rows (2 to MAX_ROWS) that the panel shows whole with
// labels of MIN_LABEL_PX or more; if none does, the one it shows at the largest zoom, if labels are
// then RELAXED_LABEL_PX or more; if none is, left to right at MIN_LABEL_PX, panned.
import dagre from '/vendor/dagre.js'

/** Label sizes at zoom 1 (CSS px); the smallest sets how far the view may zoom out. */
export const TEXT_PX = 13
const MIN_LABEL_PX = 12
const RELAXED_LABEL_PX = 10
/** Gap between wrapped rows, for the edges that go from one to the next. */
const ROW_GAP = 36
const MAX_ROWS = 4
const MARGIN = 16

function dagreLayout(nodes, edges, rankdir) {
  const g = new dagre.graphlib.Graph({ multigraph: true })
  g.setGraph({ rankdir, nodesep: 20, ranksep: 28, edgesep: 14, marginx: MARGIN, marginy: MARGIN })
  g.setDefaultEdgeLabel(() => ({}))
  for (const n of nodes) g.setNode(n.id, { width: n.width, height: n.height, item: n })
  for (const e of edges) g.setEdge(e.from, e.to, { width: e.width, height: e.height, labelpos: 'c', item: e }, e.id)
  dagre.layout(g)
  return {
    width: g.graph().width,
    height: g.graph().height,
    nodes: g.nodes().map((id) => {
      const { x, y, width, height, item } = g.node(id)
      return { item, x, y, width, height }
    }),
    edges: g.edges().map((ref) => {
      const { x, y, width, height, points, item } = g.edge(ref)
      return { item, x, y, width, height, points: points.map((p) => ({ x: p.x, y: p.y })) }
    }),
  }
}

/** Where a left-to-right layout can be cut into rows: x positions no node or edge label spans. */
function gaps(layout) {
  const boxes = [...layout.nodes, ...layout.edges].map((b) => [b.x - b.width / 2, b.x + b.width / 2]).sort((a, b) => a[0] - b[0])
  const out = []
  let reach = -Infinity
  for (const [left, right] of boxes) {
    if (left > reach && reach > -Infinity) out.push((reach + left) / 2)
    reach = Math.max(reach, right)
  }
  return out
}

/** The layout in `rows` rows, cut at the gaps nearest to equal widths, each row as high as what it holds; null when it has too few gaps. */
function wrapped(layout, rows) {
  const candidates = gaps(layout)
  const cuts = []
  for (let r = 1; r < rows; r++) {
    const target = (layout.width * r) / rows
    const best = candidates.filter((c) => c > (cuts.at(-1) ?? -Infinity)).sort((a, b) => Math.abs(a - target) - Math.abs(b - target))[0]
    if (best === undefined) return null
    cuts.push(best)
  }
  cuts.sort((a, b) => a - b)
  const bounds = [0, ...cuts, layout.width]
  const rowOf = (x) => cuts.filter((c) => x >= c).length
  // Each row's own top and bottom: its nodes, edge labels and the edges' points within it.
  const top = new Array(rows).fill(Infinity)
  const bottom = new Array(rows).fill(-Infinity)
  const extend = (x, y, half = 0) => {
    const r = rowOf(x)
    top[r] = Math.min(top[r], y - half)
    bottom[r] = Math.max(bottom[r], y + half)
  }
  for (const b of [...layout.nodes, ...layout.edges]) extend(b.x, b.y, b.height / 2)
  for (const e of layout.edges) for (const p of e.points) extend(p.x, p.y)
  // Rows stacked from the top margin, ROW_GAP apart.
  const dy = []
  for (let r = 0; r < rows; r++) dy.push(r === 0 ? MARGIN - top[0] : bottom[r - 1] + dy[r - 1] + ROW_GAP - top[r])
  const shift = (r) => ({ dx: r === 0 ? 0 : MARGIN - bounds[r], dy: dy[r] })
  const moved = (p, r) => ({ x: p.x + shift(r).dx, y: p.y + shift(r).dy })
  const nodes = layout.nodes.map((n) => ({ ...n, ...moved(n, rowOf(n.x)) }))
  const edges = layout.edges.map((e) => {
    const points = []
    e.points.forEach((p, i) => {
      const r = rowOf(p.x)
      const prev = i > 0 ? rowOf(e.points[i - 1].x) : r
      // Crossing into the next row: to the end of this one, down between the rows, back to the next one's start.
      for (let from = prev; from < r; from++) {
        const end = bounds[from + 1] + shift(from).dx
        const gapY = bottom[from] + dy[from] + ROW_GAP / 2
        const last = points.at(-1)
        const next = moved(p, from + 1).y
        // Each corner twice: the spline (map.js) keeps close to its control points there.
        for (const corner of [{ x: end, y: last.y }, { x: end, y: gapY }, { x: MARGIN, y: gapY }, { x: MARGIN, y: next }]) points.push(corner, corner)
      }
      points.push(moved(p, r))
    })
    return { ...e, ...moved(e, rowOf(e.x)), points }
  })
  const width = Math.max(...bounds.slice(1).map((b, r) => b - bounds[r] + (r === 0 ? 0 : MARGIN))) + MARGIN
  return { width, height: bottom[rows - 1] + dy[rows - 1] + MARGIN, nodes, edges }
}

/**
 * The arrangements of a graph whose nodes and edge labels have their sizes (`width`, `height`), and
 * a way to choose one for a panel: `choose(w, h)` gives `{ layout, minZoom }`, the layout in scene
 * coordinates and the smallest zoom its labels allow.
 */
export function arrangements(nodes, edges) {
  const across = dagreLayout(nodes, edges, 'LR')
  const options = [across, dagreLayout(nodes, edges, 'TB')]
  for (let rows = 2; rows <= MAX_ROWS; rows++) {
    const w = wrapped(across, rows)
    if (w) options.push(w)
  }
  return {
    choose(w, h) {
      const zoomOf = (l) => Math.min(w / l.width, h / l.height)
      // In reading order: left to right, top to bottom, then in rows, the first that fits.
      const fits = options.find((l) => zoomOf(l) * TEXT_PX >= MIN_LABEL_PX)
      if (fits) return { layout: fits, minZoom: MIN_LABEL_PX / TEXT_PX }
      const best = options.reduce((a, b) => (zoomOf(b) > zoomOf(a) ? b : a))
      if (zoomOf(best) * TEXT_PX >= RELAXED_LABEL_PX) return { layout: best, minZoom: zoomOf(best) }
      return { layout: across, minZoom: MIN_LABEL_PX / TEXT_PX }
    },
  }
}
