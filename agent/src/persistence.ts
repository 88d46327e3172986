import type BetterSqlite3 from 'better-sqlite3'
import { decodeSketch } from './sketch.js'
import type { Store } from './store.js'

/**
 * `--db file.sqlite`: the store's history in SQLite (better-sqlite3), so that a restarted agent
 * shows what it had. Changed cells (merged sketches of a series and bucket, as DDSketch
 * protobufs) and backlog offsets are written every `flushMs` and at close; at open, the last
 * window is read back into the store. Rows older than `retentionMs` are deleted.
 * better-sqlite3 is loaded only here, when a database is asked for.
 */

export interface PersistenceOptions {
  path: string
  retentionMs: number
  flushMs?: number
  /** A periodic write failed (a full disk, say): the agent keeps serving from memory. */
  onError: (err: Error) => void
}

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

export class Persistence {
  private readonly timer: NodeJS.Timeout
  private readonly upsertPoint: BetterSqlite3.Statement
  private readonly upsertBacklog: BetterSqlite3.Statement
  private readonly prune: BetterSqlite3.Transaction<(before: number) => void>
  private readonly write: BetterSqlite3.Transaction<() => void>

  private constructor(
    private readonly db: BetterSqlite3.Database,
    private readonly store: Store,
    private readonly options: PersistenceOptions,
  ) {
    this.upsertPoint = db.prepare(
      `INSERT INTO points VALUES (@bucket, @service, @env, @hash, @parent, @edge_tags, @pathway, @edge, @size)
       ON CONFLICT DO UPDATE SET pathway = excluded.pathway, edge = excluded.edge, size = excluded.size`,
    )
    this.upsertBacklog = db.prepare(
      `INSERT INTO backlogs VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET value = max(value, excluded.value)`,
    )
    const deletePoints = db.prepare('DELETE FROM points WHERE bucket < ?')
    const deleteBacklogs = db.prepare('DELETE FROM backlogs WHERE bucket < ?')
    this.prune = db.transaction((before: number) => {
      deletePoints.run(before)
      deleteBacklogs.run(before)
    })
    this.write = db.transaction(() => {
      const { cells, backlogs } = store.takeDirty()
      for (const { series, start, cell } of cells) {
        this.upsertPoint.run({
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
      for (const { series, start, value } of backlogs) this.upsertBacklog.run(start, JSON.stringify(series.tags), value)
    })
    this.timer = setInterval(() => {
      try {
        this.flush()
      } catch (err) {
        options.onError(err as Error)
      }
    }, options.flushMs ?? 2000)
    this.timer.unref()
  }

  /** Opens (or creates) the database and loads its last window into the store. */
  static async open(store: Store, options: PersistenceOptions): Promise<Persistence> {
    const { default: Database } = await import('better-sqlite3')
    const db = new Database(options.path)
    db.pragma('journal_mode = WAL')
    db.exec(SCHEMA)
    const p = new Persistence(db, store, options)
    p.load()
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

  /** Writes what changed, and deletes what is past retention. */
  flush(): void {
    this.write()
    this.prune(this.store.now() - this.options.retentionMs)
  }

  close(): void {
    clearInterval(this.timer)
    this.flush()
    this.db.close()
  }
}
