/**
 * The exporter's retry rule through the Node transport, against scripted Agents: a payload is
 * sent again only where the Agent cannot have taken it, so that none is ever counted twice.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { AgentExporter, type AgentExporterOptions } from '../bindings/export/exporter.js'
import type { Logger } from '../bindings/common/logger.js'
import { nodeTransport } from '../bindings/export/node-transport.js'
import { encodePayload, type Payload } from '../bindings/export/payload.js'
import { closedPort, startScriptedAgent } from './helpers/scripted-agent.js'

function payloadFor(service: string): Payload {
  return encodePayload({ env: 'test', service, version: '', tracerVersion: '0.1.0' }, [])
}

function recorder(): { log: Logger; warns: string[] } {
  const warns: string[] = []
  return { warns, log: { warn: (m) => warns.push(m), debug: () => {} } }
}

/** The default deadlines and retries, as an application gets them; `hold` as DataStreams passes it in Node. */
function exporter(url: string, log: Logger, options: Partial<AgentExporterOptions> = {}): AgentExporter {
  return new AgentExporter({ url, tracerVersion: '0.1.0', transport: nodeTransport, log, ...options })
}

/** Holds the test process as `flush()` does in an application: the exporter's own sockets and timers do not. */
function hold(ms: number): () => void {
  const timer = setTimeout(() => {}, ms)
  return () => clearTimeout(timer)
}

describe('export: retries never duplicate (Node transport)', { concurrency: true }, () => {
  test('an Agent answering after 5 s: each payload arrives once and the sends resolve', async () => {
    const agent = await startScriptedAgent({ then: { status: 200, afterMs: 5000 } })
    try {
      const log = recorder()
      // default waits: 2 s to connect and send, then 10 s for the answer
      const patient = exporter(agent.url, log.log, { hold })
      // an answer wait shorter than the Agent: the payload is given up, not resent
      const hasty = exporter(agent.url, log.log, { hold, answerTimeoutMs: 1000 })
      await Promise.all([patient.send(payloadFor('patient'), {}, { hold: true }), hasty.send(payloadFor('hasty'), {}, { hold: true })])
      assert.deepEqual([...agent.received].sort(), ['hasty', 'patient'])
      assert.deepEqual(patient.stats, { sent: 1, dropped: 0, failures: 0, unconfirmed: 0, queued: 0, split: 0 })
      assert.deepEqual(hasty.stats, { sent: 0, dropped: 0, failures: 0, unconfirmed: 1, queued: 0, split: 0 })
      assert.equal(agent.requests, 2)
      assert.equal(log.warns.length, 1)
      assert.match(log.warns[0], /did not confirm a stats payload \(sent, no answer within 1000 ms\); not sending it again/)
    } finally {
      await agent.close()
    }
  })

  test('connection refused, then the Agent comes up during the retries: delivered once', async () => {
    const port = await closedPort()
    const exp = exporter(`http://127.0.0.1:${port}`, recorder().log, { hold, backoffMs: 500 })
    const sending = exp.send(payloadFor('late-agent'), {}, { hold: true })
    while (exp.stats.failures === 0) await new Promise((resolve) => setTimeout(resolve, 5))
    const agent = await startScriptedAgent({ port })
    try {
      await sending
      assert.deepEqual(agent.received, ['late-agent'])
      assert.equal(agent.requests, 1)
      assert.deepEqual(exp.stats, { sent: 1, dropped: 0, failures: 1, unconfirmed: 0, queued: 0, split: 0 })
    } finally {
      await agent.close()
    }
  })

  test('503 then 200: delivered by the second request', async () => {
    const agent = await startScriptedAgent({ script: [503] })
    try {
      const exp = exporter(agent.url, recorder().log, { hold })
      await exp.send(payloadFor('a'), {}, { hold: true })
      assert.equal(agent.requests, 2)
      assert.deepEqual(agent.received, ['a', 'a'])
      assert.deepEqual(agent.accepted.map((p) => p.Service), ['a'])
      assert.deepEqual(exp.stats, { sent: 1, dropped: 0, failures: 1, unconfirmed: 0, queued: 0, split: 0 })
    } finally {
      await agent.close()
    }
  })

  test('408 and 429 ask to come back: resent', async () => {
    const agent = await startScriptedAgent({ script: [408, 429] })
    try {
      const exp = exporter(agent.url, recorder().log, { hold, backoffMs: 10 })
      await exp.send(payloadFor('a'), {}, { hold: true })
      assert.equal(agent.requests, 3)
      assert.equal(agent.accepted.length, 1)
      assert.deepEqual(exp.stats, { sent: 1, dropped: 0, failures: 2, unconfirmed: 0, queued: 0, split: 0 })
    } finally {
      await agent.close()
    }
  })

  test('a connection reset before the Agent read the body: resent', async () => {
    const agent = await startScriptedAgent({ script: ['reset'] })
    try {
      const exp = exporter(agent.url, recorder().log, { hold, backoffMs: 10 })
      await exp.send(payloadFor('a'), {}, { hold: true })
      assert.equal(agent.requests, 2)
      assert.deepEqual(agent.received, ['a'])
      assert.deepEqual(exp.stats, { sent: 1, dropped: 0, failures: 1, unconfirmed: 0, queued: 0, split: 0 })
    } finally {
      await agent.close()
    }
  })

  test('the connection closed after the Agent read the body, with no answer: not resent', async () => {
    const agent = await startScriptedAgent({ script: ['hang-up'] })
    try {
      const log = recorder()
      const exp = exporter(agent.url, log.log, { hold, backoffMs: 10 })
      await exp.send(payloadFor('a'), {}, { hold: true })
      assert.equal(agent.requests, 1)
      assert.deepEqual(agent.received, ['a'])
      assert.deepEqual(exp.stats, { sent: 0, dropped: 0, failures: 0, unconfirmed: 1, queued: 0, split: 0 })
      assert.match(log.warns[0], /sent, then socket hang up/)
      // the Agent is fine again: the next payload goes out
      await exp.send(payloadFor('b'), {}, { hold: true })
      assert.deepEqual(agent.received, ['a', 'b'])
      assert.equal(exp.stats.sent, 1)
    } finally {
      await agent.close()
    }
  })
})
