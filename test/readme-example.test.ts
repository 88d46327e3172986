/**
 * The README's manual-API example, taken from README.md and run as is by a user's process: as an
 * ES module and converted to CommonJS in Node, and in Bun. It ends right after
 * `await Promise.all([a.shutdown(), b.shutdown()])`, so its stats arrive only if shutdown keeps the
 * process alive until they are delivered: the Agent here answers after 5 s to make that last.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import type { DecodedPayload, DecodedPoint } from './helpers/agent-server.js'
import { BUN, appDir, run } from './helpers/app-dir.js'
import { startScriptedAgent } from './helpers/scripted-agent.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const section = readme.slice(readme.indexOf('### The manual API'))
const example = /```js\n([\s\S]*?)```/.exec(section)?.[1] ?? ''

/** The mechanical conversion a CommonJS user makes: imports become requires, top-level await goes into an async function. */
function toCommonJs(esm: string): string {
  const requires: string[] = []
  const body = esm.replace(/^import \{([^}]*)\} from ('[^']+')\n/gm, (_, names: string, from: string) => {
    requires.push(`const {${names}} = require(${from})`)
    return ''
  })
  return `${requires.join('\n')}\n;(async () => {\n${body}})()\n`
}

/** The one point of a manual Kafka checkpoint with these tags besides. */
function point(payload: DecodedPayload | undefined, ...tags: string[]): DecodedPoint {
  const wanted = [...tags, 'manual_checkpoint:true', 'type:kafka'].sort().join()
  const matching = (payload?.Stats ?? []).flatMap((b) => b.Stats).filter((p) => [...p.EdgeTags].sort().join() === wanted)
  assert.equal(matching.length, 1, `one point ${tags} in ${payload?.Service}`)
  return matching[0]
}

const runtimes = [
  { label: 'Node, ES module', file: 'example.mjs', source: () => example, command: process.execPath },
  { label: 'Node, CommonJS', file: 'example.cjs', source: () => toCommonJs(example), command: process.execPath },
  { label: 'Bun (the Node build)', file: 'example.mjs', source: () => example, command: BUN },
]

describe('the README example', { concurrency: true }, () => {
  test('is found in README.md and converts to CommonJS', () => {
    assert.match(example, /^import \{ createDataStreams \} from 'pathwise'$/m)
    assert.match(example, /^await Promise\.all\(\[a\.shutdown\(\), b\.shutdown\(\)\]\)/m)
    const cjs = toCommonJs(example)
    assert.doesNotMatch(cjs, /^import /m)
    assert.match(cjs, /^const \{ createDataStreams \} = require\('pathwise'\)$/m)
  })

  for (const r of runtimes) {
    test(`${r.label}: exits 0 once both services' stats arrived, each payload once`, async () => {
      const agent = await startScriptedAgent({ then: { status: 200, afterMs: 5000 } })
      const app = await appDir({ [r.file]: r.source() })
      try {
        const { code, stdout, stderr } = await run(r.command, [r.file], { dir: app.dir, env: { DD_TRACE_AGENT_URL: agent.url } })
        assert.equal(code, 0, `exit ${code}\n${stdout}\n${stderr}`)
        assert.deepEqual([...agent.received].sort(), ['billing', 'checkout'])
        const checkout = agent.accepted.find((p) => p.Service === 'checkout')
        const billing = agent.accepted.find((p) => p.Service === 'billing')
        const produced = point(checkout, 'direction:out', 'topic:orders')
        const consumed = point(billing, 'direction:in', 'topic:orders')
        const invoiced = point(billing, 'direction:out', 'topic:invoices')
        // one pathway: checkout → orders → billing → invoices
        assert.equal(consumed.ParentHash, produced.Hash)
        assert.equal(invoiced.ParentHash, consumed.Hash)
        assert.ok(stdout.startsWith(`${invoiced.Hash}n `), stdout)
      } finally {
        await app.remove()
        await agent.close()
      }
    })
  }
})
