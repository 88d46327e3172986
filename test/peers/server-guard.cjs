'use strict'
// Runs a native server (redis-server, nats-server, epmd, rabbitmq-server) for
// tests and ends it when this process's stdin closes, which happens when the
// test process goes away, even if it is killed without running any cleanup:
// those servers do not watch their stdin themselves, as the Node peers do.
//
//   node server-guard.cjs [--remove DIR] [--kill-env NAME=VALUE] -- COMMAND [ARG...]
//
// The server runs in a process group of its own, and the whole group is
// killed, so a server that forks (rabbitmq-server's shell and its beam.smp)
// goes with it, and nothing outside the group is touched. Processes that
// leave the group for a session of their own (beam.smp's erl_child_setup and
// inet_gethost) are found by an environment entry unique to this server
// (--kill-env; RABBITMQ_NODENAME=<unique node name>) and killed too, so that
// nothing of the server is left once this guard exits. SIGKILL, because a
// test server's state is thrown away: RabbitMQ's orderly stop alone takes
// seconds. DIR (the server's data) is removed afterwards. The server's
// stdout and stderr are this process's.

const { spawn } = require('node:child_process')
const { readdirSync, readFileSync, rmSync } = require('node:fs')
const { setTimeout: sleep } = require('node:timers/promises')

const MARKED_GONE_WITHIN_MS = 5_000

const args = process.argv.slice(2)
let removeDir
let killEnv
while (args[0] === '--remove' || args[0] === '--kill-env') {
  if (args[0] === '--remove') removeDir = args[1]
  else killEnv = args[1]
  args.splice(0, 2)
}
if (args[0] !== '--' || args.length < 2) {
  process.stderr.write('usage: server-guard.cjs [--remove DIR] [--kill-env NAME=VALUE] -- COMMAND [ARG...]\n')
  process.exit(2)
}
const [command, ...commandArgs] = args.slice(1)

// Listening before the server starts: its first output can reach the test
// (which may then stop it at once) before this script's next line runs, and
// a SIGTERM with no handler yet would end this guard and leave the server.
// Handlers run from the event loop, once `server` below exists.
process.stdin.on('end', finish)
process.stdin.resume()
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, finish)

const server = spawn(command, commandArgs, { stdio: ['ignore', 'inherit', 'inherit'], detached: true })

let exitCode = 0
const ended = new Promise((resolve) => {
  server.once('exit', (code, signal) => {
    exitCode = code ?? (signal === 'SIGKILL' ? 0 : 1)
    resolve()
  })
  server.once('error', (error) => {
    process.stderr.write(`${command}: ${error.message}\n`)
    exitCode = 1
    resolve()
  })
})

let finishing
function finish() {
  finishing ??= (async () => {
    killGroup()
    await ended
    // Whatever the server left in its group (a forked child) goes too.
    killGroup()
    await killMarked()
    if (removeDir) rmSync(removeDir, { recursive: true, force: true })
    process.exit(exitCode)
  })()
}

function killGroup() {
  if (server.pid === undefined) return
  try {
    process.kill(-server.pid, 'SIGKILL')
  } catch {
    // The group is gone already.
  }
}

/** Kills the processes marked with `killEnv` until none is left (or a few seconds have passed). */
async function killMarked() {
  if (killEnv === undefined) return
  const deadline = Date.now() + MARKED_GONE_WITHIN_MS
  for (let left = marked(); left.length > 0 && Date.now() < deadline; left = marked()) {
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // Gone meanwhile.
      }
    }
    await sleep(20)
  }
}

/** Live processes whose environment holds `killEnv` (this guard's own does too: it passed it on). A zombie has none. */
function marked() {
  const entry = `\0${killEnv}\0`
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid)
    .filter((pid) => {
      try {
        return `\0${readFileSync(`/proc/${pid}/environ`, 'latin1')}`.includes(entry)
      } catch {
        return false // Gone meanwhile, or not ours to read.
      }
    })
    .map(Number)
}

// A server that ends by itself (a port taken, a bad argument) ends this guard,
// so its starter sees it exit.
void ended.then(finish)
