// One configuration of case 10 (bench/cases/hops.ts) in a process of its own, plain JavaScript as
// an application runs it: NATS (a connection publishing 100-byte messages to a subject and a
// callback subscription on the same connection taking them) or HTTP (fetch POSTing 100-byte bodies
// to a node:http server of this process, 8 requests in flight). argv: the transport, the
// configuration, the NATS servers. What each configuration adds: `pathwise` is set up here as the
// README's explicit API does it (instrumentNats, instrumentHttp with 127.0.0.1 allowed); `header`
// has the application add a 28-character dd-pathway-ctx-base64 header itself (no DSM): what the
// client spends on carrying one. `pathwise-auto` (`-r pathwise/register`) and `dd-trace`
// (`-r dd-trace/init`) are set up by hops.ts. Rounds run on request; each reports the CPU time of
// this whole process, the wall time, and the header names the first message or request carried
// (round-child.mjs).
import http from 'node:http'
import { createRequire } from 'node:module'
import { runChild, serveRounds } from './round-child.mjs'

const require = createRequire(import.meta.url)
const [transport, config, servers] = process.argv.slice(2)
const HEADER = 'dd-pathway-ctx-base64'
const VALUE = 'EjXKdO8OqMfmjty4wWjmjty4wWg='
const BODY = Buffer.alloc(100, 'x')
const IN_FLIGHT = 8

async function nats() {
  const { connect, headers } = require('nats')
  const nc = await connect({ servers })
  if (config === 'pathwise') {
    const { createDataStreams, instrumentNats } = require('pathwise')
    instrumentNats(nc, createDataStreams())
  }
  const subject = `bench.${config}.${process.pid}`
  let received = 0
  let target = Infinity
  let reached
  let first
  nc.subscribe(subject, {
    callback: (_err, m) => {
      if (first === undefined) first = m.headers === undefined ? [] : [...m.headers.keys()].sort()
      if (++received >= target) reached()
    },
  })
  await nc.flush()
  const options = () => {
    if (config !== 'header') return undefined
    const h = headers()
    h.set(HEADER, VALUE)
    return { headers: h }
  }
  return async (messages) => {
    first = undefined
    const done = new Promise((resolve) => ((target = received + messages), (reached = resolve)))
    for (let i = 0; i < messages; i++) {
      nc.publish(subject, BODY, options())
      // a flush every 500: the subscription drains while the publisher writes, as in a service
      if (i % 500 === 499) await nc.flush()
    }
    await done
    return first
  }
}

async function hops() {
  if (config === 'pathwise') {
    const { createDataStreams, instrumentHttp } = require('pathwise')
    instrumentHttp(createDataStreams(), { allowedHosts: ['127.0.0.1'] })
  }
  let first
  const server = http.createServer((req, res) => {
    if (first === undefined) first = Object.keys(req.headers).filter((h) => h.startsWith('dd-') || h.startsWith('x-datadog')).sort()
    req.resume()
    req.on('end', () => res.end('ok'))
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${server.address().port}/orders`
  const init = { method: 'POST', body: BODY, headers: config === 'header' ? { [HEADER]: VALUE } : {} }
  return async (requests) => {
    first = undefined
    let next = 0
    const worker = async () => {
      while (next++ < requests) await (await fetch(url, init)).arrayBuffer()
    }
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
    return first
  }
}

runChild(async () => serveRounds(transport === 'nats' ? await nats() : await hops()))
