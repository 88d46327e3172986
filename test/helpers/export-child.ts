/**
 * Run by test/export.test.ts in a child process: sends one payload to the Agent at argv[2]
 * (which never answers) through the Node transport, with a long wait for the answer. The IPC channel keeps
 * the process alive until the parent has seen the request arrive; after that, only the export
 * is pending, and the process must exit by itself.
 */
import { AgentExporter } from '../../bindings/export/exporter.js'
import { createLogger } from '../../bindings/common/logger.js'
import { nodeTransport } from '../../bindings/export/node-transport.js'
import { encodePayload } from '../../bindings/export/payload.js'

const exporter = new AgentExporter({
  url: process.argv[2],
  tracerVersion: '0.0.0-child',
  transport: nodeTransport,
  answerTimeoutMs: 60_000,
  log: createLogger(false),
})
void exporter.send(encodePayload({ env: 'test', service: 'child', version: '', tracerVersion: '0.0.0-child' }, []))
process.once('message', () => process.disconnect())
