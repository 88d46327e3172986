// Reads the Kinesis stream `notifications` shard by shard and archives what it reads.
import { DescribeStreamCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient } from '@aws-sdk/client-kinesis'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { aws, kinesisEndpoint, running, sleep } from './env.mjs'

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
  }
  await sleep(500)
}
