/**
 * Configurations measured each in a process of its own, taking turns at rounds (cases 10 and 11):
 * a child (forked with its argv, environment and loader: `-r pathwise/register`, `-r
 * dd-trace/init`) says `ready`, then runs a round of `messages` on request and reports the CPU
 * time of its whole process, the wall time, and the header names its first message carried, by
 * which the case checks that it did what its configuration claims. The child side is
 * round-child.mjs.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { figure, type Figure } from '../harness.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const TIMEOUT_MS = 120_000

export interface Round {
  cpuMicros: number
  seconds: number
  headers: string[]
}
type FromChild = { type: 'ready'; node: string } | ({ type: 'round' } & Round) | { type: 'error'; message: string }

export interface Child<C> {
  config: C
  process: ChildProcess
  next(): Promise<FromChild>
}

/** This process's environment without its DD_ and PATHWISE_ settings, with these. */
export function childEnv(settings: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DD_') && !k.startsWith('PATHWISE_')))
  return Object.assign(env, settings)
}

/** Forks `script` for configuration `config` (`what` names it in errors). */
export function forkChild<C>(script: string, args: string[], config: C, options: { execPath: string; execArgv: string[]; env: NodeJS.ProcessEnv; what: string }): Child<C> {
  const child = fork(script, args, { cwd: ROOT, execPath: options.execPath, execArgv: options.execArgv, env: options.env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  let output = ''
  const keep = (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-4000))
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const inbox: FromChild[] = []
  let waiting: ((m: FromChild) => void) | undefined
  const deliver = (m: FromChild) => {
    const w = waiting
    waiting = undefined
    if (w !== undefined) w(m)
    else inbox.push(m)
  }
  child.on('message', (m: FromChild) => deliver(m))
  child.on('exit', (code) => deliver({ type: 'error', message: `the ${options.what} process exited (code ${code}):\n${output}` }))
  return {
    config,
    process: child,
    next: () => {
      const queued = inbox.shift()
      if (queued !== undefined) return Promise.resolve(queued)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the ${options.what} process did not answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS)
        waiting = (m) => (clearTimeout(timer), resolve(m))
      })
    },
  }
}

async function expect<C, T extends FromChild['type']>(child: Child<C>, type: T): Promise<Extract<FromChild, { type: T }>> {
  const m = await child.next()
  if (m.type === 'error') throw new Error(m.message)
  if (m.type !== type) throw new Error(`expected ${type}, got ${m.type}`)
  return m as Extract<FromChild, { type: T }>
}

/**
 * Waits for every child, then runs `rounds` rounds in which each takes its turn (the order
 * rotating) at `messages`; `wrong(config, headers)` says what a child did not do that its
 * configuration claims, which fails the case. Stops the children whatever happens.
 */
export async function runRounds<C>(
  children: Child<C>[],
  rounds: number,
  messages: number,
  wrong: (config: C, headers: string[]) => string | undefined,
): Promise<{ node: string; perRound: Map<C, Round[]> }> {
  try {
    const [{ node }] = await Promise.all(children.map((c) => expect(c, 'ready')))
    const perRound = new Map<C, Round[]>(children.map((c) => [c.config, []]))
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < children.length; k++) {
        const child = children[(round + k) % children.length]
        child.process.send({ type: 'run', messages })
        const { type: _, ...r } = await expect(child, 'round')
        const problem = wrong(child.config, r.headers)
        if (problem !== undefined) throw new Error(`${node}, ${String(child.config)}: ${problem}`)
        perRound.get(child.config)!.push(r)
      }
    }
    return { node, perRound }
  } finally {
    for (const c of children) if (c.process.connected) c.process.send({ type: 'stop' })
    await Promise.all(children.map((c) => (c.process.exitCode === null ? new Promise((r) => c.process.once('exit', r)) : undefined)))
  }
}

/** Per configuration, the CPU µs per message of each round; differences taken within each round. */
export function perMessage<C extends string>(perRound: Map<C, Round[]>, messages: number) {
  const cpu = (c: C) => perRound.get(c)!.map((r) => r.cpuMicros / messages)
  /** a − b, round by round. */
  const minus = (a: C, b: C): Figure => {
    const [x, y] = [cpu(a), cpu(b)]
    return figure(x.map((v, i) => v - y[i]))
  }
  return {
    minus,
    /** Each configuration's figure. */
    cpu: (configs: readonly C[]): Partial<Record<C, Figure>> => Object.fromEntries(configs.map((c) => [c, figure(cpu(c))])) as Partial<Record<C, Figure>>,
    /** pathwise's cost, the automatic mode's, the header's alone, pathwise's beyond the header: of the configurations every case has. */
    pathwise: (): Record<string, Figure> => ({
      'pathwise − off': minus('pathwise' as C, 'off' as C),
      'automatic − off': minus('pathwise-auto' as C, 'off' as C),
      'header − off': minus('header' as C, 'off' as C),
      'pathwise − header': minus('pathwise' as C, 'header' as C),
    }),
    /** What each configuration's first round's first message carried. */
    seen: (configs: readonly C[]): Partial<Record<C, string[]>> => Object.fromEntries(configs.map((c) => [c, perRound.get(c)![0].headers])) as Partial<Record<C, string[]>>,
  }
}
