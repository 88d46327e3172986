import { randomBytes } from 'node:crypto'
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnGuarded, waitForOutput, waitUntilListening, type PeerProcess } from './child.js'
import { freePorts } from './ports.js'

// Debian's rabbitmq-server (3.10) and the Erlang it runs on. The package's
// /usr/sbin/rabbitmq-server wrapper switches user with `su`, which resets
// HOME (and so the Erlang cookie) to /var/lib/rabbitmq: the script behind it
// is run directly, as the rabbitmq user, with everything in our directory.
const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server'
const EPMD = '/usr/bin/epmd'
const SETPRIV = '/usr/bin/setpriv'
const RABBITMQ_USER = 'rabbitmq'
const START_TIMEOUT_MS = 60_000

export interface RabbitMqPeer {
  host: '127.0.0.1'
  /** AMQP port: AMQP 0-9-1 (amqplib) and AMQP 1.0 (rhea) both */
  port: number
  /** "amqp://guest:guest@127.0.0.1:port", for amqplib `connect(url)` */
  url: string
  /** The default user (guest/guest; it may connect from loopback only): rhea `connect({ host, port, username, password })` */
  username: 'guest'
  password: 'guest'
  /** This broker's unique Erlang node name ("pathwise-<pid>-<hex>@localhost") */
  nodeName: string
  /** Its Erlang distribution port, and the port of the epmd it registers with (its own) */
  distPort: number
  epmdPort: number
  /** Its directory (data, logs), removed by `stop()` */
  dataDir: string
  /** Its log file (level info), e.g. to look for `unexpected_trailing_sections` */
  logFile: string
  /** Kills the broker, then its epmd, and removes its directory. */
  stop(): Promise<void>
}

/**
 * Starts a RabbitMQ 3.10 node of its own, as a user process, with the
 * `rabbitmq_amqp1_0` plugin so that rhea can speak AMQP 1.0 on the same port
 * as amqplib's AMQP 0-9-1. Up in about 6-8 s on an idle machine (at most 60 s
 * allowed); start one per test file and share it between tests (queues of
 * unique names), not one per test.
 *
 * Each node is alone: its own directory (data, logs, cookie, plugins
 * expanded; owned by the rabbitmq user, which the broker runs as), its own
 * free AMQP, distribution and epmd ports, all on 127.0.0.1, and a unique node
 * name. Its own epmd (ERL_EPMD_PORT), started first, because an Erlang node
 * that finds no epmd starts one as a daemon that outlives it, and on the
 * default port 4369 it would be shared with every other broker on the
 * machine: stopping or killing one would then cut the others' registration.
 * The broker and its epmd each run under server-guard.cjs, so both end when
 * `stop()` is called or the test process dies, and only they: their process
 * groups, and the processes whose environment holds this node's name.
 *
 * AMQP 1.0 addresses on RabbitMQ 3.10: `/queue/<name>` (a queue, declared if
 * missing), `/amq/queue/<name>` (an existing queue), `/exchange/<name>/<routing key>`
 * (a sender publishes there; a receiver gets a queue of its own bound there),
 * `/topic/<routing key>` (amq.topic). What the AMQP 1.0 plugin does with each
 * message section, and across the two protocols, is in test/peers-brokers.test.ts:
 * a message with delivery-annotations is lost and its connection reset.
 */
export async function startRabbitMq(): Promise<RabbitMqPeer> {
  const [port, distPort, epmdPort] = (await freePorts(3)) as [number, number, number]
  const nodeName = `pathwise-${process.pid}-${randomBytes(4).toString('hex')}@localhost`
  const dir = prepareDirectory()
  // Both must reach epmd on its port; ERL_EPMD_ADDRESS keeps it on loopback.
  const epmdEnv = { ERL_EPMD_PORT: String(epmdPort), ERL_EPMD_ADDRESS: '127.0.0.1' }
  const epmd = spawnGuarded('epmd', EPMD, ['-port', String(epmdPort)], { env: epmdEnv })
  let broker: PeerProcess | undefined
  const stop = async (): Promise<void> => {
    await broker?.stop()
    await epmd.stop()
  }
  try {
    await waitUntilListening(epmd, 'epmd', epmdPort, START_TIMEOUT_MS)
    broker = spawnGuarded(
      'rabbitmq-server',
      SETPRIV,
      [`--reuid=${RABBITMQ_USER}`, `--regid=${RABBITMQ_USER}`, '--init-groups', '--', RABBITMQ_SERVER],
      {
        cwd: dir,
        removeDir: dir,
        // beam.smp's port programs (erl_child_setup, inet_gethost) run in sessions of their own.
        killEnv: `RABBITMQ_NODENAME=${nodeName}`,
        env: {
          ...epmdEnv,
          HOME: dir,
          RABBITMQ_NODENAME: nodeName,
          RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
          RABBITMQ_NODE_PORT: String(port),
          RABBITMQ_DIST_PORT: String(distPort),
          // The distribution listener binds every interface unless told otherwise.
          RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
          RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
          RABBITMQ_LOG_BASE: join(dir, 'log'),
          RABBITMQ_PLUGINS_EXPAND_DIR: join(dir, 'plugins'),
          RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
          RABBITMQ_FEATURE_FLAGS_FILE: join(dir, 'feature_flags'),
          // Ours, so that nothing in /etc/rabbitmq applies.
          RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
          RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, 'advanced.config'),
          RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
        },
      },
    )
    await waitForOutput(broker, 'rabbitmq-server', /^ completed with \d+ plugins\.$/m, START_TIMEOUT_MS)
  } catch (error) {
    await stop()
    // A broker's guard removes the directory; one never started leaves it to us.
    if (broker === undefined) rmSync(dir, { recursive: true, force: true })
    throw error
  }
  return {
    host: '127.0.0.1',
    port,
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    username: 'guest',
    password: 'guest',
    nodeName,
    distPort,
    epmdPort,
    dataDir: dir,
    logFile: logFile(dir),
    stop,
  }
}

/** A fresh directory owned by the rabbitmq user, holding the files the broker reads at start. */
function prepareDirectory(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pathwise-rabbitmq-'))
  writeFileSync(join(dir, 'enabled_plugins'), '[rabbitmq_amqp1_0].\n')
  // The log goes to the console too, where server-guard.cjs passes it on, so that a failed start shows why.
  writeFileSync(join(dir, 'rabbitmq.conf'), `log.file = ${logFile(dir)}\nlog.console = true\n`)
  writeFileSync(join(dir, 'rabbitmq-env.conf'), '')
  const { uid, gid } = systemUser(RABBITMQ_USER)
  chownSync(dir, uid, gid)
  for (const name of readdirSync(dir)) chownSync(join(dir, name), uid, gid)
  return dir
}

function logFile(dir: string): string {
  return join(dir, 'log', 'broker.log')
}

function systemUser(name: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith(`${name}:`))
  if (line === undefined) throw new Error(`no user ${name}: install Debian's rabbitmq-server (scripts/setup.sh)`)
  const [, , uid, gid] = line.split(':')
  return { uid: Number(uid), gid: Number(gid) }
}
