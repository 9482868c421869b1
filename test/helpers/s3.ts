// Test helpers for the S3 driver against the harness's MinIO: per-test buckets, a raw client, object counts.
import { randomBytes } from 'node:crypto';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from '../../src/config';
import type { S3Storage } from '../../src/storage/s3-storage';

const region = 'us-east-1';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with \`npm test\` (the harness starts MinIO)`);
  return value;
}

/** A fresh bucket name nobody else uses (lowercase, S3-valid). */
export function uniqueBucketName(): string {
  return `t-${randomBytes(4).toString('hex')}`;
}

export type S3TestEnv = Record<
  | 'SCAIDRIVE_S3_ENDPOINT'
  | 'SCAIDRIVE_S3_REGION'
  | 'SCAIDRIVE_S3_BUCKET'
  | 'SCAIDRIVE_S3_ACCESS_KEY_ID'
  | 'SCAIDRIVE_S3_SECRET_ACCESS_KEY'
  | 'SCAIDRIVE_S3_FORCE_PATH_STYLE',
  string
>;

/** SCAIDRIVE_S3_* overrides pointing at the harness's MinIO, on a fresh bucket unless one is given (pass to testEnv()). */
export function s3TestEnv(bucket: string = uniqueBucketName()): S3TestEnv {
  return {
    SCAIDRIVE_S3_ENDPOINT: required('TEST_S3_ENDPOINT'),
    SCAIDRIVE_S3_REGION: region,
    SCAIDRIVE_S3_BUCKET: bucket,
    SCAIDRIVE_S3_ACCESS_KEY_ID: required('TEST_S3_ACCESS_KEY_ID'),
    SCAIDRIVE_S3_SECRET_ACCESS_KEY: required('TEST_S3_SECRET_ACCESS_KEY'),
    SCAIDRIVE_S3_FORCE_PATH_STYLE: 'true',
  };
}

/** The `storage` config the app would derive from s3TestEnv() (parsed by the real config loader). */
export function s3TestStorageConfig(bucket?: string) {
  const storage = loadConfig({}, { SCAIDRIVE_ENV: 'test', ...s3TestEnv(bucket) }).storage;
  if (storage.driver !== 's3') throw new Error('expected the S3 storage driver');
  return storage;
}

/** A raw S3 client on the harness's MinIO, for looking at buckets behind the driver's back. */
export function createTestS3Client(): S3Client {
  return new S3Client({
    region,
    endpoint: required('TEST_S3_ENDPOINT'),
    forcePathStyle: true,
    credentials: { accessKeyId: required('TEST_S3_ACCESS_KEY_ID'), secretAccessKey: required('TEST_S3_SECRET_ACCESS_KEY') },
  });
}

/** How many objects are in the storage's bucket under `prefix`, counted with ListObjectsV2 directly. */
export async function countObjects(storage: S3Storage, prefix = ''): Promise<number> {
  let count = 0;
  let token: string | undefined;
  do {
    const page = await storage.client.send(new ListObjectsV2Command({ Bucket: storage.bucket, Prefix: prefix, ContinuationToken: token }));
    count += page.KeyCount ?? page.Contents?.length ?? 0;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return count;
}
