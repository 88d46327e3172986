/**
 * The automatic mode patches only the versions each instrumentation supports. In child processes
 * under `-r pathwise/register` and `--import pathwise/register`, an application loads a stand-in
 * `kafkajs` package (node_modules/kafkajs with a Kafka class) whose package.json says 1.0.0, 3.0.0
 * or 2.2.4: outside `>=2.0.0 <3` the class stays as it came, with one debug line; inside, it is
 * patched. And the range check itself.
 * Uses the built package: run `npm run build` first.
 */
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { inRange } from '../bindings/register/supported-versions.js'
import { appDir, run } from './helpers/app-dir.js'

const KAFKAJS = `class Kafka {
  producer() { return {} }
  consumer() { return {} }
}
module.exports = { Kafka, originalProducer: Kafka.prototype.producer }
`
const REPORT = `console.log(JSON.stringify({ patched: kafkajs.Kafka.prototype.producer !== kafkajs.originalProducer }))\n`
const APPS = {
  'app.cjs': `const kafkajs = require('kafkajs')\n${REPORT}`,
  'app.mjs': `import kafkajs from 'kafkajs'\n${REPORT}`,
}

describe('the automatic mode and module versions', { concurrency: true }, () => {
  for (const [version, patched] of [['1.0.0', false], ['3.0.0', false], ['2.2.4', true]] as const) {
    for (const [flag, app] of [['-r', 'app.cjs'], ['--import', 'app.mjs']] as const) {
      test(`kafkajs ${version} under ${flag} pathwise/register: ${patched ? 'patched' : 'left alone'}`, async () => {
        const dir = await appDir(APPS)
        try {
          const kafkajs = path.join(dir.dir, 'node_modules/kafkajs')
          await mkdir(kafkajs)
          await writeFile(path.join(kafkajs, 'package.json'), JSON.stringify({ name: 'kafkajs', version, main: 'index.js' }))
          await writeFile(path.join(kafkajs, 'index.js'), KAFKAJS)
          const result = await run(process.execPath, [flag, 'pathwise/register', app], {
            dir: dir.dir,
            env: { DD_DATA_STREAMS_ENABLED: 'true', DD_TRACE_DEBUG: 'true', DD_TRACE_AGENT_URL: 'http://127.0.0.1:9' },
          })
          assert.equal(result.code, 0, result.stderr)
          const lines = result.stdout.trim().split('\n')
          assert.deepEqual(JSON.parse(lines[lines.length - 1]), { patched })
          const outside = lines.filter((line) => line.includes('outside the versions pathwise instruments'))
          assert.deepEqual(outside, patched ? [] : [`[pathwise] kafkajs version ${version} is outside the versions pathwise instruments (>=2.0.0 <3): left as it is`])
        } finally {
          await dir.remove()
        }
      })
    }
  }
})

test('inRange: the `>=a <b` form of the peer dependencies', () => {
  const range = '>=2.0.0 <3'
  for (const version of ['2.0.0', '2.2.4', '2.99.99', 'v2.1', '2.3.0-beta.1']) assert.equal(inRange(version, range), true, version)
  for (const version of ['1.9.9', '1.0.0', '3.0.0', '3.0.0-rc.1', '10.0.0', '', 'two', '2.x']) assert.equal(inRange(version, range), false, version)
  assert.equal(inRange('2.0.0', '~2'), false, 'a comparator it does not know')
})
