/**
 * Opens the object store a URL names: `s3://bucket/prefix?endpoint=…`, `file:///abs/path` or
 * `memory://[name]`. The rest of the broker sees only {@link ObjectStore}.
 */
import { ConfigError } from '../errors.js';
import { FileObjectStore, type FileObjectStoreOptions } from './file.js';
import { MemoryObjectStore, type MemoryObjectStoreOptions } from './memory.js';
import type { ObjectStore } from './object-store.js';
import { S3ObjectStore, type S3ObjectStoreOptions } from './s3.js';

export * from './object-store.js';
export { CountedObjectStore } from './counted.js';
export { FileObjectStore, TEMP_FILE_PREFIX, fileStoreRoot, type FileObjectStoreOptions } from './file.js';
export {
  FaultController,
  MemoryObjectStore,
  type FaultContext,
  type FaultOptions,
  type Latency,
  type MemoryObjectStoreOptions,
} from './memory.js';
export {
  DEFAULT_RETRY_POLICY,
  S3ObjectStore,
  S3_MAX_BATCH,
  backoffDelayMs,
  isTransientS3Error,
  parseS3Url,
  type RetryLogger,
  type RetryPolicy,
  type S3Location,
  type S3ObjectStoreOptions,
} from './s3.js';

/** Per-implementation options for {@link openObjectStore}; only the chosen one is used. */
export interface OpenObjectStoreOptions {
  s3?: S3ObjectStoreOptions;
  file?: FileObjectStoreOptions;
  memory?: Omit<MemoryObjectStoreOptions, 'name'>;
}

/**
 * Opens the store `url` names. Nothing is contacted yet: a bad URL throws ConfigError here,
 * an unreachable server fails the first operation with a StorageError.
 */
export function openObjectStore(url: string, options: OpenObjectStoreOptions = {}): ObjectStore {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  switch (scheme) {
    case 's3':
      return new S3ObjectStore(url, options.s3);
    case 'file':
      return new FileObjectStore(url, options.file);
    case 'memory': {
      const name = url.slice('memory:'.length).replace(/^\/\//, '').replace(/\/+$/, '');
      if (name.includes('/') || name.includes('?')) {
        throw new ConfigError(`storage URL "${url}" is not memory:// or memory://<name> (a name without "/" or "?")`);
      }
      return new MemoryObjectStore({ ...options.memory, name });
    }
    default:
      throw new ConfigError(`storage URL "${url}" is not s3://, file:// or memory://; e.g. file:///var/lib/strata or s3://bucket/prefix`);
  }
}
