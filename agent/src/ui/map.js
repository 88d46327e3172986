// The pipeline map, drawn as SVG in a view that fills its panel, arranged for the panel's size
// (map-layout.js: left to right, top to bottom, or wrapped into rows). The view first fits the
// graph to the panel, but never below the zoom at which the smallest label renders at the
// arrangement's floor (12 px, or down to 10 px when the whole graph then fits): a graph too big
// for that is panned (drag) instead. The wheel and the buttons zoom; Fit arranges and fits again.
import { arrangements, TEXT_PX } from '/map-layout.js'

const SVG_NS = 'http://www.w3.org/2000/svg'
/** Label sizes at zoom 1 (CSS px), as style.css sets them. */
const NAME_PX = 15
const LINE = 17
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
  // The data's arrangements, the one drawn, and the smallest zoom its labels allow.
  let arranged = null
  let graph = null
  let minZoom = 12 / TEXT_PX
  let selected = null

  function apply() {
    scene.setAttribute('transform', `translate(${view.x},${view.y}) scale(${view.zoom})`)
  }

  /** Arranges the graph for the panel (drawing it again if the arrangement changed) and fits it. */
  /** The panel's area for the graph: below the buttons, which would hide what is under them. */
  function area() {
    const top = Math.max(0, controls.getBoundingClientRect().bottom - svg.getBoundingClientRect().top)
    return { w: svg.clientWidth, h: svg.clientHeight - top, top }
  }

  function fit() {
    const { w, h, top } = area()
    if (!arranged || !w || !(h > 0)) return
    const chosen = arranged.choose(w, h)
    minZoom = chosen.minZoom
    if (chosen.layout !== graph) draw(chosen.layout)
    view.zoom = clamp(Math.min(w / graph.width, h / graph.height), minZoom, MAX_FIT_ZOOM)
    // Centred where it fits; where it does not, its start (the first producers) in view.
    const spareX = w - graph.width * view.zoom
    const spareY = h - graph.height * view.zoom
    view.x = spareX >= 0 ? spareX / 2 : 0
    view.y = top + (spareY >= 0 ? spareY / 2 : 0)
    view.moved = false
    apply()
  }

  /** Zooms by `factor` about the panel point (px, py). */
  function zoomAt(factor, px, py) {
    const zoom = clamp(view.zoom * factor, minZoom, MAX_ZOOM)
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
  function render(nodes, edges, selectedId) {
    const key = JSON.stringify([nodes, edges, selectedId])
    if (key === drawn) return
    drawn = key
    selected = selectedId
    if (nodes.length === 0) {
      arranged = graph = null
      scene.replaceChildren()
      return
    }
    const sizedNodes = nodes.map((n) => {
      const lines = nodeLines(n)
      const w = Math.max(width(lines[0], NAME_PX, 600), ...lines.slice(1).map((l) => width(l, TEXT_PX))) + 26
      return { id: n.id, width: Math.max(110, w), height: 22 + lines.length * LINE, data: n, lines }
    })
    const sizedEdges = edges.map((e) => {
      const lines = edgeLines(e)
      return { id: e.id, from: e.from, to: e.to, width: Math.max(...lines.map((l) => width(l, TEXT_PX))) + 14, height: lines.length * LINE + 8, data: e, lines }
    })
    arranged = arrangements(sizedNodes, sizedEdges)
    graph = null
    if (!view.moved) return fit()
    // Panned or zoomed: the arrangement the panel calls for, in the view the user left.
    const { w, h } = area()
    const chosen = arranged.choose(w, h)
    minZoom = chosen.minZoom
    draw(chosen.layout)
    apply()
  }

  function draw(layout) {
    graph = layout
    const parts = []
    for (const { item, points, x, y, width: w, height: h } of layout.edges) {
      const { data: e, lines } = item
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
    for (const { item, x, y, width: w, height: h } of layout.nodes) {
      const { data: n, lines } = item
      const group = el('g', { class: `node ${n.kind} ${n.type ?? ''}`, 'data-node-id': n.id, transform: `translate(${x - w / 2},${y - h / 2})` })
      // Services square-ish, queues round, exchanges (which route, and hold nothing) square.
      group.append(el('rect', { width: w, height: h, rx: n.kind === 'service' ? 6 : n.kind === 'exchange' ? 0 : 18 }))
      lines.forEach((line, i) => group.append(el('text', { class: i === 0 ? 'name' : i === 1 ? 'kind' : 'stats', x: 13, y: 10 + (i + 1) * LINE - 3 }, line)))
      parts.push(group)
    }
    scene.replaceChildren(...parts)
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
