// The pipeline map: dagre lays the graph out left to right, drawn as SVG in a view that fills its
// panel. The view first fits the graph to the panel, but never below the zoom at which the
// smallest label renders at MIN_LABEL_PX: a graph too big for that is panned (drag) instead.
// The wheel and the buttons zoom; Fit goes back to the first view.
import dagre from '/vendor/dagre.js'

const SVG_NS = 'http://www.w3.org/2000/svg'
/** Label sizes at zoom 1 (CSS px); the smallest sets how far the view may zoom out. */
const NAME_PX = 15
const TEXT_PX = 13
const LINE = 17
const MIN_LABEL_PX = 12
const MIN_ZOOM = MIN_LABEL_PX / TEXT_PX
const MAX_ZOOM = 3
/** The first view does not blow a small graph up past this. */
const MAX_FIT_ZOOM = 1.4
const STEP = 1.25
/** Pointer travel (px) past which a press is a drag, not a click. */
const DRAG_PX = 4

function el(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag)
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v)
  if (text !== undefined) node.textContent = text
  return node
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

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v))

/**
 * The map in `svg`. `lines` gives a node's and an edge's label lines; `onSelect(edgeId)` is
 * called when an edge is clicked. Returns `render(nodes, edges, selectedId)`.
 */
export function createMap(svg, { nodeLines, edgeLines, onSelect }) {
  const measure = document.createElement('canvas').getContext('2d')
  const family = getComputedStyle(svg).fontFamily
  const width = (text, px, weight = 400) => {
    measure.font = `${weight} ${px}px ${family}`
    return measure.measureText(text).width
  }

  const scene = el('g', { class: 'scene' })
  svg.replaceChildren(defs(), scene)
  // The view: scene coordinates × zoom + (x, y) = panel coordinates. `moved`: the user panned or
  // zoomed, so a redraw keeps the view; until then each redraw fits the graph again.
  const view = { zoom: 1, x: 0, y: 0, moved: false }
  let graph = { width: 0, height: 0 }

  function apply() {
    scene.setAttribute('transform', `translate(${view.x},${view.y}) scale(${view.zoom})`)
  }

  function fit() {
    const w = svg.clientWidth
    const h = svg.clientHeight
    if (!graph.width || !w || !h) return
    view.zoom = clamp(Math.min(w / graph.width, h / graph.height), MIN_ZOOM, MAX_FIT_ZOOM)
    // Centred where it fits; where it does not, its start (the first producers) in view.
    const spareX = w - graph.width * view.zoom
    const spareY = h - graph.height * view.zoom
    view.x = spareX >= 0 ? spareX / 2 : 0
    view.y = spareY >= 0 ? spareY / 2 : 0
    view.moved = false
    apply()
  }

  /** Zooms by `factor` about the panel point (px, py). */
  function zoomAt(factor, px, py) {
    const zoom = clamp(view.zoom * factor, MIN_ZOOM, MAX_ZOOM)
    view.x = px - ((px - view.x) * zoom) / view.zoom
    view.y = py - ((py - view.y) * zoom) / view.zoom
    view.zoom = zoom
    view.moved = true
    apply()
  }

  const centre = () => [svg.clientWidth / 2, svg.clientHeight / 2]
  const controls = svg.parentElement.querySelector('.map-controls')
  controls.querySelector('#map-zoom-in').addEventListener('click', () => zoomAt(STEP, ...centre()))
  controls.querySelector('#map-zoom-out').addEventListener('click', () => zoomAt(1 / STEP, ...centre()))
  controls.querySelector('#map-fit').addEventListener('click', fit)

  svg.addEventListener(
    'wheel',
    (event) => {
      event.preventDefault()
      const box = svg.getBoundingClientRect()
      // A notch of a mouse wheel (100 px) zooms by about STEP; a trackpad's smaller deltas less.
      zoomAt(Math.pow(STEP, -event.deltaY / 100), event.clientX - box.left, event.clientY - box.top)
    },
    { passive: false },
  )

  // A press that travels more than DRAG_PX pans; a shorter one is a click on whatever is under it.
  let drag = null
  let dragged = false
  svg.addEventListener('pointerdown', (event) => {
    if (event.button !== 0) return
    drag = { id: event.pointerId, x: event.clientX, y: event.clientY, vx: view.x, vy: view.y, panning: false }
    dragged = false
  })
  svg.addEventListener('pointermove', (event) => {
    if (!drag || event.pointerId !== drag.id) return
    const dx = event.clientX - drag.x
    const dy = event.clientY - drag.y
    if (!drag.panning && Math.hypot(dx, dy) < DRAG_PX) return
    if (!drag.panning) {
      drag.panning = true
      svg.setPointerCapture(event.pointerId)
      svg.classList.add('panning')
    }
    view.x = drag.vx + dx
    view.y = drag.vy + dy
    view.moved = true
    apply()
  })
  const end = (event) => {
    if (!drag || event.pointerId !== drag.id) return
    dragged = drag.panning
    drag = null
    svg.classList.remove('panning')
  }
  svg.addEventListener('pointerup', end)
  svg.addEventListener('pointercancel', end)
  // The click that ends a drag selects nothing.
  svg.addEventListener('click', (event) => {
    if (dragged) event.stopPropagation()
    dragged = false
  }, true)

  new ResizeObserver(() => {
    if (!view.moved) fit()
  }).observe(svg)

  // A poll that changed nothing leaves the drawing alone: a press on an edge between two polls
  // must find the same element when it is released.
  let drawn = ''
  function render(nodes, edges, selected) {
    const key = JSON.stringify([nodes, edges, selected])
    if (key === drawn) return
    drawn = key
    const g = new dagre.graphlib.Graph({ multigraph: true })
    g.setGraph({ rankdir: 'LR', nodesep: 20, ranksep: 28, edgesep: 14, marginx: 16, marginy: 16 })
    g.setDefaultEdgeLabel(() => ({}))
    for (const n of nodes) {
      const lines = nodeLines(n)
      const w = Math.max(width(lines[0], NAME_PX, 600), ...lines.slice(1).map((l) => width(l, TEXT_PX))) + 26
      g.setNode(n.id, { width: Math.max(110, w), height: 22 + lines.length * LINE, data: n, lines })
    }
    for (const e of edges) {
      const lines = edgeLines(e)
      const w = Math.max(...lines.map((l) => width(l, TEXT_PX))) + 14
      g.setEdge(e.from, e.to, { width: w, height: lines.length * LINE + 8, labelpos: 'c', data: e, lines }, e.id)
    }
    if (nodes.length === 0) {
      scene.replaceChildren()
      return
    }
    dagre.layout(g)
    graph = { width: g.graph().width, height: g.graph().height }

    const parts = []
    for (const ref of g.edges()) {
      const { points, x, y, width: w, height: h, data: e, lines } = g.edge(ref)
      const isSelected = e.id === selected
      const classes = ['edge', e.kind, isSelected && 'selected', e.count === 0 && 'idle', e.count > 0 && e.filling === e.count && 'filling']
      const group = el('g', { class: classes.filter(Boolean).join(' '), 'data-edge-id': e.id })
      const d = basis(points)
      group.append(el('path', { class: 'line', d, 'marker-end': `url(#${isSelected ? 'arrow-selected' : 'arrow'})` }))
      group.append(el('path', { class: 'hit', d }))
      const label = el('g', { class: 'label', transform: `translate(${x - w / 2},${y - h / 2})` })
      label.append(el('rect', { width: w, height: h, rx: 4 }))
      lines.forEach((line, i) => label.append(el('text', { x: 7, y: 4 + (i + 1) * LINE - 4 }, line)))
      group.append(label)
      group.append(el('title', {}, `${e.from.replace(/^service:/, '')} → ${e.to.replace(/^service:/, '')}`))
      group.addEventListener('click', () => onSelect(e.id))
      parts.push(group)
    }
    for (const id of g.nodes()) {
      const { x, y, width: w, height: h, data: n, lines } = g.node(id)
      const group = el('g', { class: `node ${n.kind} ${n.type ?? ''}`, 'data-node-id': n.id, transform: `translate(${x - w / 2},${y - h / 2})` })
      // Services square-ish, queues round, exchanges (which route, and hold nothing) square.
      group.append(el('rect', { width: w, height: h, rx: n.kind === 'service' ? 6 : n.kind === 'exchange' ? 0 : 18 }))
      lines.forEach((line, i) => group.append(el('text', { class: i === 0 ? 'name' : i === 1 ? 'kind' : 'stats', x: 13, y: 10 + (i + 1) * LINE - 3 }, line)))
      parts.push(group)
    }
    scene.replaceChildren(...parts)
    if (view.moved) apply()
    else fit()
  }

  return { render }
}

function defs() {
  const defs = el('defs')
  for (const id of ['arrow', 'arrow-selected']) {
    const marker = el('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' })
    marker.append(el('path', { d: 'M0,0L10,5L0,10z' }))
    defs.append(marker)
  }
  return defs
}
