/** Data Streams Monitoring for the AWS SDK v3: SQS, SNS, EventBridge and Kinesis. */
export { pathwiseSqs } from './sqs.js'
export { pathwiseSns } from './sns.js'
export { pathwiseEventBridge } from './eventbridge.js'
export { pathwiseKinesis, type PathwiseKinesisOptions } from './kinesis.js'
export type { AwsPlugin, MiddlewareStackLike } from './middleware.js'
