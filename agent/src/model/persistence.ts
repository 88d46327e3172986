import type BetterSqlite3 from 'better-sqlite3'
import type { Worker } from 'node:worker_threads'
import { migratePoints, openHistory, type CellRow } from './history-db.js'
import type { RowKey, WriteReply, WriteRequest, WriterOptions } from './persistence-writer.js'
import type { Store } from './store.js'
import { startWorker } from './worker-thread.js'

/**
 * `--db file.sqlite`: the store's history in SQLite (better-sqlite3, model/history-db.ts), so that
 * a restarted agent shows what it had. One agent owns a database file at a time: it holds a lock
 * (`file.sqlite.lock`, released by the system when the process ends, however it ends), and a second
 * agent on the same file stops at once, saying so. At open, the last window is read back into the
 * store; from then on, each point's cell is also kept as it came (Store.trackChanges) and, every
 * `flushMs` (what a kill -9 can lose) and at close, handed to a writer thread
 * (model/persistence-writer.ts), which merges them into the rows. Rows older than `retentionMs` are deleted.
 *
 * A write that fails (the database locked by another process, read-only, a full disk) loses
 * nothing: the writer keeps its changes and writes them at the next interval, together with what
 * changed since. They are bounded as memory is: a change older than the window is dropped before it
 * could be written, and counted. A failing database is logged once, not at every attempt.
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
  /**
   * Changed cells and backlog values not written yet: those whose write failed, kept in memory and
   * retried every interval, and those changed since the last write was handed over.
   */
  unwritten: number
  /** Unwritten changes evicted from memory (older than the window) before a write succeeded: lost. */
  dropped: number
  /** While writes fail: the last error, since when, and how many attempts failed. */
  failing: { error: string; since: number; attempts: number } | null
  /** The last write that succeeded: its rows (cells and backlog values, each merged into the file) and how long it took. */
  lastWrite: { rows: number; ms: number } | null
}

/** A second agent on a database file another one owns. */
export class DatabaseInUse extends Error {}

const DEFAULT_FLUSH_MS = 2000
/** How long the first statements may wait for another process's lock: only at startup. */
const OPEN_BUSY_MS = 5000
/**
 * How long a periodic write waits for a lock. It waits in the writer thread, not the main thread;
 * a longer lock is retried at the next interval instead.
 */
const WRITE_BUSY_MS = 100
/** The last write at close may wait longer: nothing else is served any more. */
const CLOSE_BUSY_MS = 1000
/** Rows read back per merge into the store. */
const LOAD_CHUNK = 1024

export class Persistence {
  private readonly timer: NodeJS.Timeout
  private readonly flushMs: number
  /** The batch the writer is on; the next waits for it, the store's changes merging meanwhile. */
  private writing: Promise<WriteReply> | null = null
  private lastWriteAt: number | null = null
  private lastWrite: PersistenceStatus['lastWrite'] = null
  private unwritten = 0
  private dropped = 0
  private failing: PersistenceStatus['failing'] = null
  /** Why the writer thread stopped, once it has. */
  private stopped: string | null = null

  private constructor(
    private readonly lock: BetterSqlite3.Database,
    private readonly writer: Worker,
    private readonly store: Store,
    private readonly options: PersistenceOptions,
  ) {
    this.flushMs = options.flushMs ?? DEFAULT_FLUSH_MS
    writer.on('error', (err) => (this.stopped = err.message))
    writer.once('exit', (code) => (this.stopped ??= `exit code ${code}`))
    this.timer = setInterval(() => void this.flush(WRITE_BUSY_MS, false), this.flushMs)
    this.timer.unref()
  }

  /** Takes the database's lock, reads its last window into the store and starts the writer. Throws DatabaseInUse when another agent has it. */
  static async open(store: Store, options: PersistenceOptions): Promise<Persistence> {
    const lock = await takeLock(options.path)
    try {
      const db = await openHistory(options.path, OPEN_BUSY_MS)
      try {
        migratePoints(db)
        load(store, db)
      } finally {
        db.close()
      }
      store.trackChanges()
      const writer = await startWriter({ path: options.path, windowMs: store.windowMs, retentionMs: options.retentionMs })
      return new Persistence(lock, writer, store, options)
    } catch (err) {
      lock.close()
      throw err
    }
  }

  status(): PersistenceStatus {
    return {
      flushIntervalSeconds: this.flushMs / 1000,
      lastWriteAt: this.lastWriteAt,
      unwritten: this.unwritten + this.store.changed,
      dropped: this.dropped,
      failing: this.failing && { ...this.failing },
      lastWrite: this.lastWrite && { ...this.lastWrite },
    }
  }

  /** Hands what changed to the writer (unless it is still on the last batch) and records how the write went. */
  private async flush(busyMs: number, last: boolean): Promise<WriteReply | null> {
    if (this.writing) {
      if (!last) return null
      await this.writing
    }
    const { rows, entries, bytes, ends, backlogs } = this.store.takeChanges()!
    const request: WriteRequest = {
      rows: rows.map(({ series: s, start }): RowKey => [start, s.service, s.env, s.hash.toString(), s.parent.toString(), JSON.stringify(s.edgeTags)]),
      entries,
      bytes,
      ends,
      backlogs: backlogs.map(({ series, start, value }): WriteRequest['backlogs'][number] => [JSON.stringify(series.tags), start, value]),
      now: this.store.now(),
      busyMs,
      last,
    }
    this.writer.ref()
    this.writing = this.answer(rows.length + backlogs.length)
    if (this.stopped === null) this.writer.postMessage(request, [entries.buffer as ArrayBuffer, bytes.buffer as ArrayBuffer, ends.buffer as ArrayBuffer])
    const reply = await this.writing
    this.writing = null
    this.writer.unref()
    if ('at' in reply) this.record(reply, last)
    return reply
  }

  /**
   * The writer's answer to the batch just posted; if the writer has stopped (a bug: it catches what
   * SQLite throws), a failed write of everything it held and of the batch.
   */
  private answer(rows: number): Promise<WriteReply> {
    return new Promise((resolve) => {
      const answered = (reply: WriteReply): void => {
        this.writer.off('exit', failed)
        resolve(reply)
      }
      const failed = (): void => {
        this.writer.off('message', answered)
        resolve({ at: Date.now(), error: `the writer thread stopped (${this.stopped})`, unwritten: this.unwritten + rows, dropped: this.dropped, rows: 0, ms: 0 })
      }
      if (this.stopped !== null) return failed()
      this.writer.once('message', answered)
      this.writer.once('exit', failed)
    })
  }

  private record(reply: Extract<WriteReply, { at: number }>, last: boolean): void {
    this.unwritten = reply.unwritten
    this.dropped = reply.dropped
    if (reply.error === null) {
      this.lastWriteAt = reply.at
      this.lastWrite = { rows: reply.rows, ms: Math.round(reply.ms * 10) / 10 }
      if (this.failing) {
        this.options.log(`database ${this.options.path}: writes resumed after ${this.failing.attempts} failed attempts${this.dropped > 0 ? `; ${this.dropped} changes older than the window were lost` : ''}`)
        this.failing = null
      }
    } else if (last) {
      this.options.log(`database ${this.options.path}: stopped with ${reply.unwritten} changes not written (${reply.error})`)
    } else if (this.failing) {
      this.failing.attempts++
      this.failing.error = reply.error
    } else {
      this.failing = { error: reply.error, since: reply.at, attempts: 1 }
      this.options.log(`database ${this.options.path}: write failed (${reply.error}); changes are kept in memory and retried every ${this.flushMs / 1000} s`)
    }
  }

  /** A last write, then closes and lets the lock go. Never throws: a shutdown is not stopped by a database it cannot write. */
  async close(): Promise<void> {
    clearInterval(this.timer)
    try {
      await this.flush(CLOSE_BUSY_MS, true)
    } catch (err) {
      this.options.log(`database ${this.options.path}: stopped with changes not written (${(err as Error).message})`)
    }
    await this.writer.terminate()
    this.lock.close()
  }
}

/**
 * The database's lock: `path.lock`, a SQLite file held in exclusive mode for as long as this
 * process runs (the system releases it when the process ends, however it ends). The database
 * itself stays readable by anyone, the sqlite3 shell included.
 */
async function takeLock(path: string): Promise<BetterSqlite3.Database> {
  const { default: Database } = await import('better-sqlite3')
  const lockPath = `${path}.lock`
  const lock = new Database(lockPath, { timeout: 0 })
  try {
    lock.pragma('locking_mode = EXCLUSIVE')
    lock.exec('BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS owner (pid INTEGER NOT NULL, since INTEGER NOT NULL); DELETE FROM owner;')
    lock.prepare('INSERT INTO owner VALUES (?, ?)').run(process.pid, Date.now())
    lock.exec('COMMIT')
  } catch (err) {
    lock.close()
    if ((err as { code?: string }).code === 'SQLITE_BUSY') {
      throw new DatabaseInUse(`database ${path} is in use by another pathwise agent (it holds ${lockPath}): one database file is for one agent at a time`)
    }
    throw err
  }
  return lock
}

/** The rows of the last window into the store, a chunk at a time; rows this agent cannot read are skipped. */
function load(store: Store, db: BetterSqlite3.Database): void {
  const since = store.now() - store.windowMs
  const ids: number[] = []
  const starts: number[] = [0]
  let bytes = new Uint8Array(64 * 1024)
  const merge = (): void => {
    store.sketches.merge(ids, bytes, starts, ids.length)
    ids.length = 0
    starts.length = 1
  }
  for (const row of db.prepare('SELECT * FROM cells WHERE bucket > ?').iterate(since) as Iterable<CellRow>) {
    let cell: number | null = null
    try {
      cell = store.cellFor(row.service, row.env, BigInt(row.hash), BigInt(row.parent), JSON.parse(row.edge_tags) as string[], row.bucket)
    } catch {
      // A row this agent cannot read (edited by hand, or corrupt) is skipped, not fatal.
    }
    if (cell === null) continue
    const at = starts[starts.length - 1]
    if (at + row.sketches.length > bytes.length) {
      const bigger = new Uint8Array(Math.max(2 * bytes.length, at + row.sketches.length))
      bigger.set(bytes.subarray(0, at))
      bytes = bigger
    }
    bytes.set(row.sketches, at)
    ids.push(cell)
    starts.push(at + row.sketches.length)
    if (ids.length === LOAD_CHUNK) merge()
  }
  merge()
  const backlogs = db.prepare('SELECT bucket, tags, value FROM backlogs WHERE bucket > ?').iterate(since) as Iterable<{ bucket: number; tags: string; value: number }>
  for (const row of backlogs) {
    try {
      store.recordBacklog(JSON.parse(row.tags) as string[], row.bucket, row.value, false)
    } catch {
      // As above.
    }
  }
}

/** The writer thread, once it has the database open. */
function startWriter(options: WriterOptions): Promise<Worker> {
  const worker = startWorker(new URL('./persistence-writer', import.meta.url), { workerData: options })
  return new Promise((resolve, reject) => {
    const fail = (err: Error): void => {
      void worker.terminate()
      reject(err)
    }
    worker.once('error', fail)
    worker.once('message', () => {
      worker.off('error', fail)
      worker.unref()
      resolve(worker)
    })
  })
}
