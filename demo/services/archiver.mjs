// Reads the Kinesis stream `notifications` shard by shard, archives what it reads, and asks for a
// report of each record on the BullMQ queue `reports` (a few of them scheduled for later).
import { DescribeStreamCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient } from '@aws-sdk/client-kinesis'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { Queue } from 'bullmq'
import { aws, kinesisEndpoint, redis, running, sleep } from './env.mjs'

const reports = new Queue('reports', { connection: redis })

const kinesis = new KinesisClient({ ...aws, endpoint: kinesisEndpoint, requestHandler: new NodeHttpHandler() })
const { StreamDescription } = await kinesis.send(new DescribeStreamCommand({ StreamName: 'notifications' }))
const iterators = await Promise.all(
  StreamDescription.Shards.map(async (shard) => {
    const out = await kinesis.send(new GetShardIteratorCommand({ StreamName: 'notifications', ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))
    return out.ShardIterator
  }),
)
while (running.on) {
  for (let i = 0; i < iterators.length; i++) {
    const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterators[i], Limit: 100 }))
    iterators[i] = out.NextShardIterator
    for (const record of out.Records ?? []) {
      const delay = Math.random() < 0.1 ? 5000 : 0
      await reports.add('report', { sequence: record.SequenceNumber, bytes: record.Data?.length ?? 0 }, { delay, attempts: 2, backoff: { type: 'fixed', delay: 1000 } })
    }
  }
  await sleep(500)
}
await reports.close()
