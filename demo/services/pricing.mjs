// Prices orders over HTTP (node:http, POST /quote) and publishes each quote to the NATS JetStream
// stream QUOTES (`quotes.priced`). Plain application code: pathwise instruments it from
// `node --import pathwise/register`, the HTTP hop from the enricher with DD_DATA_STREAMS_HTTP_ENABLED.
import http from 'node:http'
import { connect } from 'nats'
import { jitter, natsServers, running, sleep } from './env.mjs'

const nc = await connect({ servers: natsServers })
const js = nc.jetstream()
const server = http.createServer((req, res) => {
  const chunks = []
  req.on('data', (chunk) => chunks.push(chunk))
  req.on('end', async () => {
    await sleep(jitter(3))
    const order = JSON.parse(Buffer.concat(chunks).toString())
    const quote = { id: order.id, total: order.items.reduce((sum, item) => sum + item.qty * 9.5, 0) }
    await js.publish('quotes.priced', JSON.stringify(quote))
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(quote))
  })
})
server.listen(Number(process.env.PRICING_PORT), '127.0.0.1')
while (running.on) await sleep(200)
server.close()
await nc.drain()
