/** Data Streams Monitoring for the AWS SDK v3: SQS and Kinesis. */
export { pathwiseSqs } from './sqs.js'
export { pathwiseKinesis, type PathwiseKinesisOptions } from './kinesis.js'
export type { AwsPlugin, MiddlewareStackLike } from './middleware.js'
