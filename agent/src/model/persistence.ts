import type BetterSqlite3 from 'better-sqlite3'
import { decodeSketch } from './sketch.js'
import type { BacklogSeries, Cell, Series, Store } from './store.js'

/**
 * `--db file.sqlite`: the store's history in SQLite (better-sqlite3), so that a restarted agent
 * shows what it had. Changed cells (merged sketches of a series and bucket, as DDSketch
 * protobufs) and backlog offsets are written every `flushMs` (what a kill -9 can lose) and at
 * close; at open, the last window is read back into the store. Rows older than `retentionMs` are
 * deleted. better-sqlite3 is loaded only here, when a database is asked for.
 *
 * A write that fails (the database locked by another process, read-only, a full disk) loses
 * nothing: its changes stay pending and are written at the next interval, together with what
 * changed since. Pending changes are the store's own cells (a map entry each, no copy), so they are
 * bounded as the store is: a change older than the window is evicted from memory before it could
 * be written, and counted as dropped. A failing database is logged once, not at every attempt.
 */

export interface PersistenceOptions {
  path: string
  retentionMs: number
  /** Default 2 s. */
  flushMs?: number
  /** One line per event: writes failing, writes resuming, changes left unwritten at close. */
  log: (line: string) => void
}

/** What `/api/status` shows of the database (`dbWrites`). */
export interface PersistenceStatus {
  flushIntervalSeconds: number
  /** When a write last succeeded (ms since the epoch). */
  lastWriteAt: number | null
  /** Changed cells and backlog values whose write failed, kept in memory and retried every interval. */
  unwritten: number
  /** Unwritten changes evicted from memory (older than the window) before a write succeeded: lost. */
  dropped: number
  /** While writes fail: the last error, since when, and how many attempts failed. */
  failing: { error: string; since: number; attempts: number } | null
}

const DEFAULT_FLUSH_MS = 2000
/** How long the first statements may wait for another process's lock: only at startup. */
const OPEN_BUSY_MS = 5000
/**
 * How long a periodic write waits for a lock. It waits on the main thread, which serves intake
 * meanwhile; a longer lock is retried at the next interval instead.
 */
const WRITE_BUSY_MS = 100
/** The last write at close may wait longer: nothing else is served any more. */
const CLOSE_BUSY_MS = 1000

const SCHEMA = `
CREATE TABLE IF NOT EXISTS points (
  bucket INTEGER NOT NULL, service TEXT NOT NULL, env TEXT NOT NULL, hash TEXT NOT NULL, parent TEXT NOT NULL,
  edge_tags TEXT NOT NULL, pathway BLOB NOT NULL, edge BLOB NOT NULL, size BLOB NOT NULL,
  PRIMARY KEY (bucket, service, env, hash, parent, edge_tags)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS backlogs (
  bucket INTEGER NOT NULL, tags TEXT NOT NULL, value REAL NOT NULL,
  PRIMARY KEY (bucket, tags)
) WITHOUT ROWID;
`

interface PointRow {
  bucket: number
  service: string
  env: string
  hash: string
  parent: string
  edge_tags: string
  pathway: Uint8Array
  edge: Uint8Array
  size: Uint8Array
}

interface PendingCell {
  series: Series
  start: number
  cell: Cell
}

interface PendingBacklog {
  series: BacklogSeries
  start: number
}

export class Persistence {
  private readonly timer: NodeJS.Timeout
  private readonly flushMs: number
  private readonly write: BetterSqlite3.Transaction<(pruneBefore: number) => void>
  /** Changes taken from the store and not yet committed, by series key and bucket. */
  private readonly pendingCells = new Map<string, PendingCell>()
  private readonly pendingBacklogs = new Map<string, PendingBacklog>()
  private dropped = 0
  private lastWriteAt: number | null = null
  private failing: PersistenceStatus['failing'] = null

  private constructor(
    private readonly db: BetterSqlite3.Database,
    private readonly store: Store,
    private readonly options: PersistenceOptions,
  ) {
    this.flushMs = options.flushMs ?? DEFAULT_FLUSH_MS
    const upsertPoint = db.prepare(
      `INSERT INTO points VALUES (@bucket, @service, @env, @hash, @parent, @edge_tags, @pathway, @edge, @size)
       ON CONFLICT DO UPDATE SET pathway = excluded.pathway, edge = excluded.edge, size = excluded.size`,
    )
    const upsertBacklog = db.prepare(
      `INSERT INTO backlogs VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET value = max(value, excluded.value)`,
    )
    const deletePoints = db.prepare('DELETE FROM points WHERE bucket < ?')
    const deleteBacklogs = db.prepare('DELETE FROM backlogs WHERE bucket < ?')
    this.write = db.transaction((pruneBefore: number) => {
      // Each cell as it is now: the merge of everything received, however many attempts failed.
      for (const { series, start, cell } of this.pendingCells.values()) {
        upsertPoint.run({
          bucket: start,
          service: series.service,
          env: series.env,
          hash: series.hash.toString(),
          parent: series.parent.toString(),
          edge_tags: JSON.stringify(series.edgeTags),
          pathway: cell.pathway.toProto(),
          edge: cell.edge.toProto(),
          size: cell.size.toProto(),
        })
      }
      for (const { series, start } of this.pendingBacklogs.values()) upsertBacklog.run(start, JSON.stringify(series.tags), series.values.get(start))
      deletePoints.run(pruneBefore)
      deleteBacklogs.run(pruneBefore)
    })
    this.timer = setInterval(() => this.tick(), this.flushMs)
    this.timer.unref()
  }

  /** Opens (or creates) the database and loads its last window into the store. */
  static async open(store: Store, options: PersistenceOptions): Promise<Persistence> {
    const { default: Database } = await import('better-sqlite3')
    const db = new Database(options.path, { timeout: OPEN_BUSY_MS })
    db.pragma('journal_mode = WAL')
    db.exec(SCHEMA)
    const p = new Persistence(db, store, options)
    p.load()
    db.pragma(`busy_timeout = ${WRITE_BUSY_MS}`)
    return p
  }

  private load(): void {
    const since = this.store.now() - this.store.windowMs
    for (const row of this.db.prepare('SELECT * FROM points WHERE bucket > ?').iterate(since) as Iterable<PointRow>) {
      try {
        const cell = this.store.cellFor(row.service, row.env, BigInt(row.hash), BigInt(row.parent), JSON.parse(row.edge_tags) as string[], row.bucket, false)
        if (!cell) continue
        cell.pathway.merge(decodeSketch(row.pathway))
        cell.edge.merge(decodeSketch(row.edge))
        cell.size.merge(decodeSketch(row.size))
      } catch {
        // A row this agent cannot read (edited by hand, or corrupt) is skipped, not fatal.
      }
    }
    const backlogs = this.db.prepare('SELECT bucket, tags, value FROM backlogs WHERE bucket > ?').iterate(since) as Iterable<{ bucket: number; tags: string; value: number }>
    for (const row of backlogs) {
      try {
        this.store.recordBacklog(JSON.parse(row.tags) as string[], row.bucket, row.value, false)
      } catch {
        // As above.
      }
    }
  }

  status(): PersistenceStatus {
    return {
      flushIntervalSeconds: this.flushMs / 1000,
      lastWriteAt: this.lastWriteAt,
      unwritten: this.pendingCells.size + this.pendingBacklogs.size,
      dropped: this.dropped,
      failing: this.failing && { ...this.failing },
    }
  }

  /** Writes what changed and deletes what is past retention, in one transaction; throws if it failed. */
  private flush(): void {
    for (const [key, p] of this.pendingCells) {
      if (p.series.cells.get(p.start) !== p.cell) {
        this.pendingCells.delete(key)
        this.dropped++
      }
    }
    for (const [key, p] of this.pendingBacklogs) {
      if (!p.series.values.has(p.start)) {
        this.pendingBacklogs.delete(key)
        this.dropped++
      }
    }
    const { cells, backlogs } = this.store.takeDirty()
    for (const c of cells) this.pendingCells.set(`${c.series.key}\u0000${c.start}`, c)
    for (const b of backlogs) this.pendingBacklogs.set(`${b.series.key}\u0000${b.start}`, b)
    this.write(this.store.now() - this.options.retentionMs)
    this.pendingCells.clear()
    this.pendingBacklogs.clear()
    this.lastWriteAt = Date.now()
  }

  private tick(): void {
    try {
      this.flush()
    } catch (err) {
      if (this.failing) {
        this.failing.attempts++
        this.failing.error = (err as Error).message
      } else {
        this.failing = { error: (err as Error).message, since: Date.now(), attempts: 1 }
        this.options.log(`database ${this.options.path}: write failed (${this.failing.error}); changes are kept in memory and retried every ${this.flushMs / 1000} s`)
      }
      return
    }
    if (this.failing) {
      this.options.log(`database ${this.options.path}: writes resumed after ${this.failing.attempts} failed attempts${this.dropped > 0 ? `; ${this.dropped} changes older than the window were lost` : ''}`)
      this.failing = null
    }
  }

  /** A last write, then closes. Never throws: a shutdown is not stopped by a database it cannot write. */
  close(): void {
    clearInterval(this.timer)
    this.db.pragma(`busy_timeout = ${CLOSE_BUSY_MS}`)
    try {
      this.flush()
    } catch (err) {
      this.options.log(
        `database ${this.options.path}: stopped with ${this.pendingCells.size + this.pendingBacklogs.size} changes not written (${(err as Error).message})`,
      )
    }
    this.db.close()
  }
}
