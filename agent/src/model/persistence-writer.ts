import { parentPort, workerData } from 'node:worker_threads'
import { createSketchStore } from 'pathwise/core'
import { blob, openHistory, UPSERT_BACKLOG, UPSERT_CELL, type CellRow } from './history-db.js'
import { CELL_WIDTH } from './payload.js'

/**
 * The writer thread of model/persistence.ts: it takes what changed (the points' cells with their
 * series and 10 s bucket, backlog values), merges it into what it has not written yet (a cell per
 * row), and writes all of it in one transaction, each cell merged into its row. A write that fails (the database locked by another
 * process, read-only, a full disk) keeps its changes and is tried again with the next batch; a
 * change older than the window is dropped then, and counted. Writing here keeps the main thread,
 * which serves the intake and the page, free of SQLite's time: 10,000 rows take it about 0.1 s.
 */

export interface WriterOptions {
  path: string
  windowMs: number
  retentionMs: number
}

/** Identifies a cell's row: bucket, service, env, hash, parent hash, edge tags (JSON). */
export type RowKey = [bucket: number, service: string, env: string, hash: string, parent: string, edgeTags: string]

export interface WriteRequest {
  /** The rows changed, each once. */
  rows: RowKey[]
  /** Per point: its row, and its cell, bytes[ends[i - 1], ends[i]) (from 0 for the first). */
  entries: Uint32Array
  bytes: Uint8Array
  ends: Uint32Array
  /** Backlog values: tags (JSON), bucket, value. */
  backlogs: Array<[tags: string, bucket: number, value: number]>
  now: number
  /** How long to wait for another process's lock. */
  busyMs: number
  /** The last batch: close the database after it. */
  last: boolean
}

export type WriteReply =
  | { ready: true }
  | {
      at: number
      error: string | null
      unwritten: number
      dropped: number
      /** The write's rows (cells and backlog values) and how long its transaction took. */
      rows: number
      ms: number
    }

/** How long the first statements may wait for another process's lock: only at startup. */
const OPEN_BUSY_MS = 5000

const options = workerData as WriterOptions
const port = parentPort!
const db = await openHistory(options.path, OPEN_BUSY_MS)
const upsertCell = db.prepare(UPSERT_CELL)
const upsertBacklog = db.prepare(UPSERT_BACKLOG)
const pruneCells = db.prepare('DELETE FROM cells WHERE bucket < ?')
const pruneBacklogs = db.prepare('DELETE FROM backlogs WHERE bucket < ?')
/** Changes not written yet: cells here, by row. */
const pending = createSketchStore({ width: CELL_WIDTH })
const pendingCells = new Map<string, { row: RowKey; cell: number }>()
const pendingBacklogs = new Map<string, [tags: string, bucket: number, value: number]>()
let dropped = 0

const write = db.transaction((pruneBefore: number) => {
  const entries = [...pendingCells.values()]
  const { bytes, ends } = pending.bytesOf(
    entries.map((e) => e.cell),
    entries.length,
  )
  entries.forEach(({ row: [bucket, service, env, hash, parent, edge_tags] }, i) => {
    const sketches = blob(bytes.subarray(i === 0 ? 0 : ends[i - 1], ends[i]))
    upsertCell.run({ bucket, service, env, hash, parent, edge_tags, sketches } satisfies CellRow)
  })
  for (const [tags, bucket, value] of pendingBacklogs.values()) upsertBacklog.run(bucket, tags, value)
  pruneCells.run(pruneBefore)
  pruneBacklogs.run(pruneBefore)
})

/** Merges a batch of changes into those not written yet. */
function take(request: WriteRequest): void {
  const cells = request.rows.map((row) => {
    const key = row.join('\u0000')
    let entry = pendingCells.get(key)
    if (!entry) pendingCells.set(key, (entry = { row, cell: pending.newCell() }))
    return entry.cell
  })
  const ids = Array.from(request.entries, (row) => cells[row])
  pending.merge(ids, request.bytes, [0, ...request.ends], ids.length)
  for (const b of request.backlogs) {
    const key = `${b[1]}\u0000${b[0]}`
    const old = pendingBacklogs.get(key)
    if (!old || b[2] > old[2]) pendingBacklogs.set(key, b)
  }
}

/** After a failed write: what has left the window is dropped, and counted. */
function dropOld(now: number): void {
  const oldest = now - options.windowMs
  for (const [key, { row, cell }] of pendingCells) {
    if (row[0] > oldest) continue
    pending.freeCell(cell)
    pendingCells.delete(key)
    dropped++
  }
  for (const [key, [, bucket]] of pendingBacklogs) {
    if (bucket > oldest) continue
    pendingBacklogs.delete(key)
    dropped++
  }
}

port.on('message', (request: WriteRequest) => {
  take(request)
  let error: string | null = null
  const rows = pendingCells.size + pendingBacklogs.size
  const started = performance.now()
  try {
    db.pragma(`busy_timeout = ${request.busyMs}`)
    write(request.now - options.retentionMs)
    for (const { cell } of pendingCells.values()) pending.freeCell(cell)
    pendingCells.clear()
    pendingBacklogs.clear()
  } catch (err) {
    error = (err as Error).message
    dropOld(request.now)
  }
  if (request.last) db.close()
  const ms = performance.now() - started
  port.postMessage({ at: Date.now(), error, unwritten: pendingCells.size + pendingBacklogs.size, dropped, rows, ms } satisfies WriteReply)
})
port.postMessage({ ready: true } satisfies WriteReply)
