import type BetterSqlite3 from 'better-sqlite3'
import { CompactWriter, createSketchStore } from 'pathwise/core'
import { CELL_WIDTH, EDGE, PATHWAY, SIZE } from './payload.js'
import { readSketchProto } from './sketch-proto.js'

/**
 * The `--db` file's tables and how a cell is written to them, shared by the main thread (which
 * reads the history back at start) and the writer thread (model/persistence-writer.ts). A row of
 * `cells` is a series' 10 s bucket: its three sketches as one cell in the sketch store's compact
 * form. A write merges what changed into the row (`pathwise_merge_cells`), never replaces it, so
 * nothing written is lost whatever wrote it. Older agents kept three DDSketch protobufs a row in
 * `points`: those rows are merged into `cells` once, at the first start.
 *
 * better-sqlite3 is loaded only here, when a database is asked for.
 */

const SCHEMA = `
CREATE TABLE IF NOT EXISTS cells (
  bucket INTEGER NOT NULL, service TEXT NOT NULL, env TEXT NOT NULL, hash TEXT NOT NULL, parent TEXT NOT NULL,
  edge_tags TEXT NOT NULL, sketches BLOB NOT NULL,
  PRIMARY KEY (bucket, service, env, hash, parent, edge_tags)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS backlogs (
  bucket INTEGER NOT NULL, tags TEXT NOT NULL, value REAL NOT NULL,
  PRIMARY KEY (bucket, tags)
) WITHOUT ROWID;
`

export interface CellRow {
  bucket: number
  service: string
  env: string
  /** Unsigned 64-bit hashes, in decimal. */
  hash: string
  parent: string
  /** The edge tags as a JSON array. */
  edge_tags: string
  sketches: Uint8Array
}

/** Merges a row's change into the row: the stored cell's sketches with the change's merged in. */
export const UPSERT_CELL = `INSERT INTO cells VALUES (@bucket, @service, @env, @hash, @parent, @edge_tags, @sketches)
  ON CONFLICT DO UPDATE SET sketches = pathwise_merge_cells(sketches, excluded.sketches)`
/** Keeps the highest offset, as the store does. */
export const UPSERT_BACKLOG = 'INSERT INTO backlogs VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET value = max(value, excluded.value)'

/** Opens (or creates) the database, waiting up to `busyMs` for another process's lock. */
export async function openHistory(path: string, busyMs: number): Promise<BetterSqlite3.Database> {
  const { default: Database } = await import('better-sqlite3')
  const db = new Database(path, { timeout: busyMs })
  try {
    db.pragma('journal_mode = WAL')
    db.exec(SCHEMA)
    registerMerge(db)
  } catch (err) {
    db.close()
    throw err
  }
  return db
}

/** `pathwise_merge_cells(stored, change)`: a stored cell that cannot be read (edited by hand, corrupt) is replaced by the change. */
function registerMerge(db: BetterSqlite3.Database): void {
  const store = createSketchStore({ width: CELL_WIDTH })
  db.function('pathwise_merge_cells', { deterministic: true }, (stored: unknown, change: unknown) => {
    const id = store.newCell()
    try {
      for (const bytes of [stored, change]) if (bytes instanceof Uint8Array) store.merge([id], bytes, [0, bytes.length], 1)
      return blob(store.bytesOf([id], 1).bytes)
    } finally {
      store.freeCell(id)
    }
  })
}

/** Bytes as better-sqlite3 binds a BLOB: a Buffer over the same memory. */
export const blob = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

interface PointRow extends Omit<CellRow, 'sketches'> {
  pathway: Uint8Array
  edge: Uint8Array
  size: Uint8Array
}

/** Rows of an older agent's `points` table read a chunk at a time. */
const MIGRATE_CHUNK = 1000

/** An older agent's `points` rows merged into `cells`, then the table dropped; a row that cannot be read is left out. */
export function migratePoints(db: BetterSqlite3.Database): void {
  if (!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'points'").get()) return
  const writer = new CompactWriter(CELL_WIDTH)
  const chunk = db.prepare(`SELECT * FROM points LIMIT ${MIGRATE_CHUNK}`)
  const upsert = db.prepare(UPSERT_CELL)
  const remove = db.prepare('DELETE FROM points WHERE bucket = ? AND service = ? AND env = ? AND hash = ? AND parent = ? AND edge_tags = ?')
  const migrate = db.transaction((rows: PointRow[]) => {
    for (const row of rows) {
      remove.run(row.bucket, row.service, row.env, row.hash, row.parent, row.edge_tags)
      try {
        readSketchProto(row.pathway, writer, PATHWAY)
        readSketchProto(row.edge, writer, EDGE)
        readSketchProto(row.size, writer, SIZE)
      } catch {
        writer.endCell()
        continue
      }
      const { bucket, service, env, hash, parent, edge_tags } = row
      upsert.run({ bucket, service, env, hash, parent, edge_tags, sketches: blob(writer.endCell()) })
    }
  })
  for (let rows = chunk.all() as PointRow[]; rows.length > 0; rows = chunk.all() as PointRow[]) migrate(rows)
  db.exec('DROP TABLE points')
}
