// The child side of round-children.ts: `serveRounds(round)` warms up with BENCH_WARM_UP messages,
// says `ready`, then runs `round(messages)` (which resolves with the header names its first
// message carried) on each request, reporting this whole process's CPU time and the wall time.
const send = (m) => process.send(m)

export async function serveRounds(round) {
  await round(Number(process.env.BENCH_WARM_UP ?? 1000))
  process.on('message', (m) => {
    if (m.type !== 'run') process.exit(0)
    const cpu = process.cpuUsage()
    const start = process.hrtime.bigint()
    round(m.messages).then(
      (headers) => {
        const used = process.cpuUsage(cpu)
        send({ type: 'round', seconds: Number(process.hrtime.bigint() - start) / 1e9, cpuMicros: used.user + used.system, headers: headers ?? [] })
      },
      (err) => send({ type: 'error', message: err.stack ?? String(err) }),
    )
  })
  send({ type: 'ready', node: process.version })
}

/** Runs `main` (which calls serveRounds); the parent gone, nothing is left to do. */
export function runChild(main) {
  process.on('disconnect', () => process.exit(0))
  main().catch((err) => {
    send({ type: 'error', message: err.stack ?? String(err) })
    process.exit(1)
  })
}
