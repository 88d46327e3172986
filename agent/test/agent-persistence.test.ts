/**
 * `--db` with a real agent process, a real SQLite file and real signals: when the database
 * misbehaves (locked by another process, read-only, the agent killed with SIGKILL), when a second
 * agent is started on it, when something else writes to it meanwhile, when it was written by an
 * older agent, and what a restart restores; in process, a writer thread that stops.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, before, describe, test } from 'node:test'
import type { Worker } from 'node:worker_threads'
import Database from 'better-sqlite3'
import { CompactWriter, createSketchStore } from 'pathwise/core'
import { CELL_WIDTH, EDGE } from '../src/model/payload.js'
import { Persistence } from '../src/model/persistence.js'
import { Store } from '../src/model/store.js'
import type { EdgeDetail, Status } from '../src/views/api.js'
import type { EdgeView } from '../src/views/topology.js'
import { getJson, pathwisePayload, postStats, sketchOf } from './helpers/agent-fixtures.js'
import { latencies } from './helpers/agent-pipeline.js'
import { killAgentProcesses, runBin, startAgentProcess, waitFor, type AgentProcess } from './helpers/agent-process.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)))
const bucketNow = (): number => Date.now() - (Date.now() % 10_000)

/** Payload i: service svc-i with i + 1 messages, its own series, so its own cell and row: each one written or lost on its own. */
function payload(i: number): Uint8Array {
  return pathwisePayload(`svc-${i}`, [
    { startMs: bucketNow(), points: [{ tags: ['direction:out', 'topic:orders', 'type:kafka'], hash: BigInt(i + 1), edge: Array<number>(i + 1).fill(0.01) }] },
  ])
}

/** Messages per service, as the agent shows them. */
async function counts(url: string): Promise<Map<string, number>> {
  const { edges } = await getJson<{ edges: EdgeView[] }>(url, '/api/topology?range=600')
  return new Map(edges.map((e) => [e.from.replace(/^service:/, ''), e.count]))
}

async function status(url: string): Promise<Status> {
  return getJson<Status>(url, '/api/status')
}

const dbLines = (text: string): string[] => text.split('\n').filter((l) => l.includes('database'))

async function stop(agent: AgentProcess, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  agent.child.kill(signal)
  return agent.exited
}

/**
 * Makes SQLite refuse writes to `file`. chmod does not stop root, and the tests may run as root:
 * then the file is made immutable (chattr +i), which root's writes fail on too.
 */
function makeReadOnly(file: string): () => void {
  if (process.getuid?.() !== 0) {
    chmodSync(file, 0o444)
    return () => chmodSync(file, 0o644)
  }
  try {
    execFileSync('chattr', ['+i', file], { stdio: 'pipe' })
  } catch (err) {
    throw new Error(`cannot make a file read-only for root here (chattr +i: ${(err as Error).message.trim()}); run the tests as another user`)
  }
  return () => execFileSync('chattr', ['-i', file])
}

describe('persistence: a database that fails', () => {
  let dir: string
  let db: string
  let n = 0
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pathwise-persistence-'))
  })
  afterEach(killAgentProcesses)
  after(() => rmSync(dir, { recursive: true, force: true }))
  const freshDb = (): string => (db = join(dir, `history-${n++}.sqlite`))

  test('locked by another process for 9 s: 20 payloads kept and written once it is free, intake never held up, one line each way', async () => {
    const agent = await startAgentProcess('--db', freshDb())
    const lock = new Database(db)
    try {
      lock.exec('BEGIN EXCLUSIVE')
      const lockedAt = Date.now()
      for (let i = 0; i < 20; i++) {
        const t = performance.now()
        assert.equal((await postStats(agent.url, payload(i))).status, 200)
        // Each attempt waits 100 ms at most for the lock; better-sqlite3's default would hold the event loop 5 s (the bound leaves room for a loaded machine).
        assert.ok(performance.now() - t < 4000, `payload ${i} took ${(performance.now() - t).toFixed(0)} ms while the database was locked`)
        await sleep(lockedAt + (i + 1) * 440 - Date.now())
      }
      const locked = (await waitFor('all 20 pending', () => status(agent.url), (s) => s.dbWrites?.unwritten === 20, 5000)).dbWrites!
      assert.equal(locked.failing?.error, 'database is locked')
      assert.ok(locked.failing.attempts >= 3, `${locked.failing.attempts} attempts`)
      assert.equal(locked.dropped, 0)
      await sleep(lockedAt + 9000 - Date.now())
      lock.exec('COMMIT')
    } finally {
      lock.close()
    }
    await waitFor('the retried write', () => status(agent.url), (s) => s.dbWrites?.failing === null && s.dbWrites.unwritten === 0, 5000)
    const lines = dbLines(agent.stderr())
    assert.equal(lines.length, 2, agent.stderr())
    assert.match(lines[0], /write failed \(database is locked\); changes are kept in memory and retried every 2 s$/)
    assert.match(lines[1], /writes resumed after \d+ failed attempts$/)
    // SIGKILL: what the restarted agent finds was written by the retries, not at a clean exit.
    await stop(agent, 'SIGKILL')
    const again = await startAgentProcess('--db', db)
    try {
      const found = await counts(again.url)
      for (let i = 0; i < 20; i++) assert.equal(found.get(`svc-${i}`), i + 1, `svc-${i}`)
    } finally {
      await stop(again, 'SIGTERM')
    }
  })

  test('SIGTERM while another process holds the lock: the last write waits for it, then the agent exits 0', async () => {
    // A flush interval longer than the test: only the write at exit can save these.
    const agent = await startAgentProcess('--db', freshDb(), '--db-flush-interval', '10m')
    for (let i = 0; i < 3; i++) assert.equal((await postStats(agent.url, payload(i))).status, 200)
    const lock = new Database(db)
    try {
      lock.exec('BEGIN EXCLUSIVE')
      agent.child.kill('SIGTERM')
      await sleep(300)
      lock.exec('COMMIT')
    } finally {
      lock.close()
    }
    assert.deepEqual(await agent.exited, { code: 0, signal: null })
    assert.deepEqual(dbLines(agent.stderr()), [])
    const again = await startAgentProcess('--db', db)
    try {
      const found = await counts(again.url)
      assert.deepEqual([0, 1, 2].map((i) => found.get(`svc-${i}`)), [1, 2, 3])
    } finally {
      await stop(again, 'SIGTERM')
    }
  })

  test('SIGTERM with the lock held throughout: exits 0 after one more try, with one line saying what was not written', async () => {
    const agent = await startAgentProcess('--db', freshDb(), '--db-flush-interval', '10m')
    for (let i = 0; i < 3; i++) assert.equal((await postStats(agent.url, payload(i))).status, 200)
    const lock = new Database(db)
    try {
      lock.exec('BEGIN EXCLUSIVE')
      assert.deepEqual(await stop(agent, 'SIGTERM'), { code: 0, signal: null })
    } finally {
      lock.exec('ROLLBACK')
      lock.close()
    }
    assert.deepEqual(dbLines(agent.stderr()).map((l) => l.replace(/^.*: stopped/, 'stopped')), ['stopped with 3 changes not written (database is locked)'])
    assert.doesNotMatch(agent.stderr(), /SqliteError|\n\s+at /)
  })

  test('a read-only database file: read, one line for the failing writes, SIGTERM exits 0 after one more try', async () => {
    const first = await startAgentProcess('--db', freshDb())
    assert.equal((await postStats(first.url, payload(0))).status, 200)
    assert.deepEqual(await stop(first, 'SIGTERM'), { code: 0, signal: null })
    const undo = makeReadOnly(db)
    try {
      const agent = await startAgentProcess('--db', db, '--db-flush-interval', '0.2s')
      assert.equal((await counts(agent.url)).get('svc-0'), 1, 'history is still read')
      for (let i = 1; i <= 2; i++) assert.equal((await postStats(agent.url, payload(i))).status, 200)
      const failing = (await waitFor('five failed attempts', () => status(agent.url), (s) => (s.dbWrites?.failing?.attempts ?? 0) >= 5)).dbWrites!
      assert.equal(failing.failing?.error, 'attempt to write a readonly database')
      assert.equal(failing.unwritten, 2)
      const lines = dbLines(agent.stderr())
      assert.equal(lines.length, 1, agent.stderr())
      assert.match(lines[0], /write failed \(attempt to write a readonly database\); changes are kept in memory and retried every 0\.2 s$/)
      const logged = agent.stderr().length
      assert.deepEqual(await stop(agent, 'SIGTERM'), { code: 0, signal: null })
      const atExit = agent.stderr().slice(logged)
      assert.deepEqual(dbLines(atExit).map((l) => l.replace(/^.*: stopped/, 'stopped')), ['stopped with 2 changes not written (attempt to write a readonly database)'])
      assert.doesNotMatch(agent.stderr(), /SqliteError|\n\s+at /)
    } finally {
      undo()
    }
  })

  test('SIGKILL while payloads arrive: the restarted agent has everything older than the flush interval', async () => {
    const flushMs = 1000
    const agent = await startAgentProcess('--db', freshDb(), '--db-flush-interval', '1s')
    const acked: number[] = []
    const end = Date.now() + 4500
    for (let i = 0; Date.now() < end; i++) {
      assert.equal((await postStats(agent.url, payload(i))).status, 200)
      acked.push(Date.now())
      await sleep(100)
    }
    const killedAt = Date.now()
    await stop(agent, 'SIGKILL')
    const again = await startAgentProcess('--db', db)
    try {
      const found = await counts(again.url)
      // Timers fire a little late, and a commit takes a few ms: a margin of 300 ms.
      const old = acked.flatMap((at, i) => (at < killedAt - flushMs - 300 ? [i] : []))
      assert.ok(old.length >= 10, `${old.length} payloads old enough`)
      for (const i of old) assert.equal(found.get(`svc-${i}`), i + 1, `svc-${i}, acked ${killedAt - acked[i]} ms before the kill`)
    } finally {
      await stop(again, 'SIGTERM')
    }
  })

  test('--db-flush-interval must be a positive duration', async () => {
    const child = runBin('agent', '--db', join(dir, 'unused.sqlite'), '--db-flush-interval', '0')
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const code = await new Promise((resolve) => child.on('close', resolve))
    assert.equal(code, 2)
    assert.match(stderr, /^pathwise: --db-flush-interval: must be more than 0 and at most 24d/)
  })
})

describe('persistence: one agent a file, writes that merge, what a restart restores', () => {
  let dir: string
  let n = 0
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pathwise-persistence-'))
  })
  afterEach(killAgentProcesses)
  after(() => rmSync(dir, { recursive: true, force: true }))
  const freshDb = (): string => join(dir, `history-${n++}.sqlite`)
  /** `messages` messages of svc-0's series in the current bucket. */
  const messages = (count: number, startMs = bucketNow()): Uint8Array =>
    pathwisePayload('svc-0', [{ startMs, points: [{ tags: ['direction:out', 'topic:orders', 'type:kafka'], hash: 1n, edge: Array<number>(count).fill(0.01) }] }])

  test('a second agent on the same file stops at once, exit code 1, saying another agent has it', async () => {
    const db = freshDb()
    const first = await startAgentProcess('--db', db)
    const second = runBin('agent', '--port', '0', '--db', db)
    let stderr = ''
    second.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const code = await new Promise((resolve) => second.on('close', resolve))
    assert.equal(code, 1)
    assert.match(stderr, /^pathwise: database .*history-\d+\.sqlite is in use by another pathwise agent \(it holds .*\.lock\): one database file is for one agent at a time\n$/)
    // The first one is unaffected, and the file is free once it stops.
    assert.equal((await postStats(first.url, messages(1))).status, 200)
    assert.deepEqual(await stop(first, 'SIGTERM'), { code: 0, signal: null })
    const third = await startAgentProcess('--db', db)
    assert.equal((await counts(third.url)).get('svc-0'), 1)
    await stop(third, 'SIGTERM')
  })

  test('agents one after the other add up: 10 messages, then 5 in the same series and bucket, read back as 15', async () => {
    const db = freshDb()
    const start = bucketNow()
    const a = await startAgentProcess('--db', db)
    assert.equal((await postStats(a.url, messages(10, start))).status, 200)
    await stop(a, 'SIGTERM')
    const b = await startAgentProcess('--db', db)
    assert.equal((await postStats(b.url, messages(5, start))).status, 200)
    await stop(b, 'SIGTERM')
    const c = await startAgentProcess('--db', db)
    assert.equal((await counts(c.url)).get('svc-0'), 15)
    await stop(c, 'SIGTERM')
  })

  test('a write merges with what another process stored meanwhile: 10 from the agent and 7 written beside it, 17 in the file', async () => {
    const db = freshDb()
    const start = bucketNow()
    const agent = await startAgentProcess('--db', db, '--db-flush-interval', '0.2s')
    assert.equal((await postStats(agent.url, messages(3, start))).status, 200)
    await waitFor('the first write of the row', () => status(agent.url), (s) => (s.dbWrites?.lastWrite?.rows ?? 0) > 0)
    // Another process adds 7 messages to the same row (as a second agent on the file would have).
    const other = new Database(db)
    const row = other.prepare('SELECT * FROM cells').get() as { sketches: Uint8Array }
    const writer = new CompactWriter(CELL_WIDTH)
    for (let i = 0; i < 7; i++) writer.add(EDGE, 0.01)
    const seven = writer.endCell()
    const store = createSketchStore({ width: CELL_WIDTH })
    const id = store.newCell()
    store.merge([id], row.sketches, [0, row.sketches.length], 1)
    store.merge([id], seven, [0, seven.length], 1)
    other.prepare('UPDATE cells SET sketches = ?').run(Buffer.from(store.bytesOf([id], 1).bytes))
    other.close()
    assert.equal((await postStats(agent.url, messages(7, start))).status, 200)
    await stop(agent, 'SIGTERM')
    const again = await startAgentProcess('--db', db)
    assert.equal((await counts(again.url)).get('svc-0'), 17)
    await stop(again, 'SIGTERM')
  })

  test("an older agent's file (three protobufs a row) is read back, then kept as cells", async () => {
    const db = freshDb()
    const old = new Database(db)
    old.exec(`CREATE TABLE points (
      bucket INTEGER NOT NULL, service TEXT NOT NULL, env TEXT NOT NULL, hash TEXT NOT NULL, parent TEXT NOT NULL,
      edge_tags TEXT NOT NULL, pathway BLOB NOT NULL, edge BLOB NOT NULL, size BLOB NOT NULL,
      PRIMARY KEY (bucket, service, env, hash, parent, edge_tags)) WITHOUT ROWID`)
    const values = [0.01, 0.02, 0.03, 0.04]
    old.prepare('INSERT INTO points VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(bucketNow(), 'svc-0', 'test', '1', '0', JSON.stringify(['direction:out', 'topic:orders', 'type:kafka']), Buffer.from(sketchOf(values)), Buffer.from(sketchOf(values)), Buffer.from(sketchOf([100, 100, 100, 100])))
    old.close()
    const agent = await startAgentProcess('--db', db)
    const { edges } = await getJson<{ edges: EdgeView[] }>(agent.url, '/api/topology?range=600')
    const edge = edges.find((e) => e.from === 'service:svc-0')!
    assert.equal(edge.count, 4)
    assert.ok(Math.abs(edge.latency!.p50 - 0.02) <= 0.0002, `p50 ${edge.latency!.p50}`)
    await stop(agent, 'SIGTERM')
    const file = new Database(db, { readonly: true })
    assert.deepEqual(file.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all(), [{ name: 'backlogs' }, { name: 'cells' }])
    file.close()
  })

  test('a restart restores the same numbers, minutes rolled up included: counts, quantiles and the edge chart', async () => {
    const db = freshDb()
    const agent = await startAgentProcess('--db', db)
    // Six 10 s buckets 30 minutes ago (kept as one minute), and the current one.
    const minute = bucketNow() - 30 * 60_000 - ((bucketNow() - 30 * 60_000) % 60_000)
    const buckets = [...Array(6).keys()].map((i) => ({ startMs: minute + i * 10_000, points: [{ tags: ['direction:out', 'topic:orders', 'type:kafka'], hash: 1n, edge: latencies(i + 1, 20 + i, 0.001, 0.05) }] }))
    buckets.push({ startMs: bucketNow(), points: [{ tags: ['direction:out', 'topic:orders', 'type:kafka'], hash: 1n, edge: latencies(9, 30, 0.001, 0.05) }] })
    assert.equal((await postStats(agent.url, pathwisePayload('svc-0', buckets))).status, 200)
    const read = async (url: string) => ({
      edge: (await getJson<{ edges: EdgeView[] }>(url, '/api/topology?range=3600')).edges.find((e) => e.from === 'service:svc-0'),
      chart: (await getJson<EdgeDetail>(url, `/api/edge?range=3600&id=${encodeURIComponent('service:svc-0>kafka:orders')}`)).buckets.map(({ start, count, latency }) => ({ start, count, latency })),
    })
    const before = await read(agent.url)
    assert.equal(before.chart[0].start, minute)
    assert.equal(before.chart[0].count, [...Array(6).keys()].reduce((sum, i) => sum + 20 + i, 0))
    await stop(agent, 'SIGTERM')
    const again = await startAgentProcess('--db', db)
    const after = await read(again.url)
    assert.deepEqual({ ...after.edge, rate: 0 }, { ...before.edge, rate: 0 })
    assert.deepEqual(after.chart, before.chart)
    await stop(again, 'SIGTERM')
  })
})

describe('persistence: the writer thread stopping', () => {
  test('a write to a writer that stopped fails and is logged (what it held counted), instead of waiting forever', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pathwise-writer-'))
    try {
      const store = new Store({ windowMs: 600_000, maxSeries: 10, maxCells: 100, now: Date.now })
      const lines: string[] = []
      const persistence = await Persistence.open(store, { path: join(dir, 'h.sqlite'), retentionMs: 600_000, log: (l) => lines.push(l) })
      // The writer catches what SQLite throws; stopping it stands for a bug in it.
      await (persistence as unknown as { writer: Worker }).writer.terminate()
      store.recordBacklog(['type:kafka_produce', 'topic:orders', 'partition:0'], bucketNow(), 42)
      assert.equal(persistence.status().unwritten, 1)
      await persistence.close()
      assert.equal(lines.length, 1)
      assert.match(lines[0], /stopped with 1 changes not written \(the writer thread stopped \(exit code 1\)\)/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
