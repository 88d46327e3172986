/** Stats buckets are 10 s wide. */
export const BUCKET_MS = 10_000
