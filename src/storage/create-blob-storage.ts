// Builds the blob storage driver (S3 or filesystem) the configuration asks for.
import type { Config } from '../config';
import type { BlobStorage } from './blob-storage';
import { FilesystemStorage } from './filesystem-storage';
import { S3Storage } from './s3-storage';

export function createBlobStorage(storage: Config['storage']): BlobStorage {
  return storage.driver === 's3' ? new S3Storage(storage) : new FilesystemStorage(storage.path);
}
