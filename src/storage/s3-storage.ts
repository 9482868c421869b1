// S3 blob driver (any S3-compatible store: AWS, MinIO) over @aws-sdk/client-s3.
import type { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Config } from '../config';
import { BlobNotFoundError, type BlobStorage, type ByteRange } from './blob-storage';
import { S3LeanClient } from './s3-lean-client';

type S3Config = Extract<Config['storage'], { driver: 's3' }>;

/** A 404 about the object. A missing bucket (NoSuchBucket, also a 404) is a configuration error, not an absent blob. */
function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (e.name === 'NoSuchBucket') return false;
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/** A presigned PUT: the client sends the bytes to `url` with exactly these headers. */
export interface PresignedPut {
  url: string;
  headers: Record<string, string>;
}

/** What the store says about an object written through a presigned PUT. */
export interface CheckedObject {
  size: number;
  /** The SHA-256 the store verified on write (hex), when it was written with a checksum. */
  sha256: string | null;
  /** The `x-amz-meta-scaidrive-upload` tag the presigned PUT carried. */
  uploadTag: string | null;
}

/** Metadata key a direct chunk PUT must carry (signed into its URL): which session and index wrote the object. */
const uploadTagKey = 'scaidrive-upload';

export class S3Storage implements BlobStorage {
  readonly driver = 's3' as const;
  readonly client: S3Client;
  readonly bucket: string;
  /** Signs URLs for clients: on the public endpoint when the API reaches the store at another address. */
  private readonly signer: S3Client;

  constructor(config: S3Config) {
    this.bucket = config.bucket;
    const options = (endpoint: string | undefined) => ({
      region: config.region,
      endpoint,
      forcePathStyle: config.forcePathStyle,
      credentials: config.accessKeyId && config.secretAccessKey ? { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey } : undefined,
      // Only send/verify checksums when the operation requires them: MinIO and older S3-compatibles reject the new defaults on streams.
      requestChecksumCalculation: 'WHEN_REQUIRED' as const,
      responseChecksumValidation: 'WHEN_REQUIRED' as const,
    });
    this.client = new S3Client(options(config.endpoint));
    this.signer = config.publicEndpoint ? new S3Client(options(config.publicEndpoint)) : this.client;
    // Lean HEADs and chunk PUTs where the store's address is configured (MinIO and other S3-compatibles); AWS's own
    // endpoints (resolved by the SDK's rules) keep the SDK.
    this.lean = config.endpoint ? new S3LeanClient(new URL(config.endpoint), config.bucket, config.forcePathStyle, this.client.config) : undefined;
  }

  private readonly lean?: S3LeanClient;

  /**
   * A URL to PUT exactly `size` bytes whose SHA-256 is `sha256` (hex) under `key`: the store itself rejects
   * other bytes (x-amz-checksum-sha256 is signed), and the object records `uploadTag` (signed metadata), so a
   * later check can tell that this client wrote it rather than finding what someone else stored.
   */
  async presignPut(key: string, sha256: string, size: number, uploadTag: string, expiresInSeconds: number): Promise<PresignedPut> {
    const checksum = Buffer.from(sha256, 'hex').toString('base64');
    const signed = new Set(['content-length', 'x-amz-checksum-sha256', `x-amz-meta-${uploadTagKey}`]);
    const url = await getSignedUrl(
      this.signer,
      new PutObjectCommand({ Bucket: this.bucket, Key: key, ContentLength: size, ChecksumSHA256: checksum, Metadata: { [uploadTagKey]: uploadTag } }),
      { expiresIn: expiresInSeconds, signableHeaders: signed, unhoistableHeaders: signed },
    );
    return { url, headers: { 'x-amz-checksum-sha256': checksum, [`x-amz-meta-${uploadTagKey}`]: uploadTag } };
  }

  /** A URL to GET the object for `expiresInSeconds`, answered with these Content-Type and Content-Disposition. */
  async presignGet(key: string, expiresInSeconds: number, response: { contentType: string; contentDisposition: string }): Promise<string> {
    return getSignedUrl(
      this.signer,
      new GetObjectCommand({ Bucket: this.bucket, Key: key, ResponseContentType: response.contentType, ResponseContentDisposition: response.contentDisposition }),
      { expiresIn: expiresInSeconds },
    );
  }

  /** Size, verified checksum and upload tag of an object, or null when absent. */
  async headChecked(key: string): Promise<CheckedObject | null> {
    try {
      const result = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED' }));
      return {
        size: result.ContentLength ?? 0,
        sha256: result.ChecksumSHA256 ? Buffer.from(result.ChecksumSHA256, 'base64').toString('hex') : null,
        uploadTag: result.Metadata?.[uploadTagKey] ?? null,
      };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async ensureReady(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      if (!isNotFound(error)) throw error;
      try {
        await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
      } catch (createError) {
        // Another process created it between our HEAD and CREATE: that is ready too.
        if ((createError as { name?: string }).name !== 'BucketAlreadyOwnedByYou') throw createError;
      }
    }
  }

  async put(key: string, body: Buffer | Readable, size?: number): Promise<void> {
    if (Buffer.isBuffer(body) && this.lean) return this.lean.put(key, body);
    const length = Buffer.isBuffer(body) ? body.length : size;
    if (length === undefined) throw new Error('S3 put of a stream needs its size');
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: length }));
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    if (this.lean) {
      const stream = await this.lean.get(key, range);
      if (!stream) throw new BlobNotFoundError(key);
      return stream;
    }
    try {
      const result = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range ? `bytes=${range.start}-${range.end}` : undefined }),
      );
      return result.Body as Readable;
    } catch (error) {
      if (isNotFound(error)) throw new BlobNotFoundError(key);
      throw error;
    }
  }

  async head(key: string): Promise<{ size: number } | null> {
    if (this.lean) return this.lean.head(key);
    try {
      const result = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: result.ContentLength ?? 0 };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  async *list(prefix: string): AsyncIterable<string> {
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const object of page.Contents ?? []) if (object.Key) yield object.Key;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }
}
