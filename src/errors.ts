/**
 * Broker fault classes: the third kind of failure (docs/architecture.md §3.2).
 *
 * Kafka outcomes travel as response data and malformed input is a `WireError`; everything
 * else that goes wrong inside the broker — the object store, Redis, a lost coordinator lease,
 * a timeout — is thrown as a {@link BrokerError}. Each carries the Kafka error code a client
 * should see, whether retrying can help, and the underlying `cause`. One boundary per
 * partition or group operation turns it into a response with {@link toKafkaErrorCode}.
 */
import { ErrorCode } from '../wire/index.js';

/** Options every {@link BrokerError} constructor accepts. */
export interface BrokerErrorOptions {
  /** The error that triggered this one (an SDK error, an errno exception, …). */
  cause?: unknown;
  /** Overrides the subclass default for whether a retry can succeed. */
  retriable?: boolean;
}

/**
 * An infrastructure fault, with the Kafka error code it maps to.
 *
 * `retriable` says whether the same request may succeed later (a throttled S3 call) or will
 * keep failing (access denied); it decides logging and retries inside the broker, while
 * `code` is what the client receives.
 */
export class BrokerError extends Error {
  override readonly name: string = 'BrokerError';
  /** The Kafka error code a response carries for this fault (an {@link ErrorCode} value). */
  readonly code: number;
  /** Whether retrying the same operation can succeed. */
  readonly retriable: boolean;

  constructor(message: string, code: number, retriable: boolean, options: BrokerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? retriable;
  }
}

/** The object store failed (network, throttling, server error, permission); KAFKA_STORAGE_ERROR. */
export class StorageError extends BrokerError {
  override readonly name: string = 'StorageError';

  constructor(message: string, options: BrokerErrorOptions = {}) {
    super(message, ErrorCode.KAFKA_STORAGE_ERROR, true, options);
  }
}

/**
 * The object store has no object under the key. Not retriable: the object will not appear by
 * asking again, so a reader that expected it has found lost or garbage-collected data.
 */
export class ObjectNotFoundError extends StorageError {
  override readonly name: string = 'ObjectNotFoundError';

  constructor(
    /** The key as the caller passed it (without any store-level prefix). */
    readonly key: string,
    options: { cause?: unknown } = {},
  ) {
    super(`object "${key}" does not exist`, { ...options, retriable: false });
  }
}

/** Redis did not answer or refused the connection; REQUEST_TIMED_OUT so clients retry. */
export class RedisUnavailableError extends BrokerError {
  override readonly name: string = 'RedisUnavailableError';

  constructor(message: string, options: BrokerErrorOptions = {}) {
    super(message, ErrorCode.REQUEST_TIMED_OUT, true, options);
  }
}

/**
 * This broker no longer holds the coordinator lease (another broker took over, or the lease
 * expired); NOT_COORDINATOR so the client looks the coordinator up again.
 */
export class LostLeaseError extends BrokerError {
  override readonly name: string = 'LostLeaseError';

  constructor(message: string, options: BrokerErrorOptions = {}) {
    super(message, ErrorCode.NOT_COORDINATOR, true, options);
  }
}

/** A broker-side deadline passed before the operation finished; REQUEST_TIMED_OUT. */
export class BrokerTimeoutError extends BrokerError {
  override readonly name: string = 'BrokerTimeoutError';

  constructor(message: string, options: BrokerErrorOptions = {}) {
    super(message, ErrorCode.REQUEST_TIMED_OUT, true, options);
  }
}

/**
 * Invalid configuration (a flag, an environment variable, a storage URL). Not a broker fault:
 * it is raised at startup and the process exits with its one-line message.
 */
export class ConfigError extends Error {
  override readonly name: string = 'ConfigError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The Kafka error code for a thrown value: a {@link BrokerError}'s own code, otherwise
 * UNKNOWN_SERVER_ERROR (the caller logs those, since they are bugs or unclassified faults).
 */
export function toKafkaErrorCode(err: unknown): number {
  return err instanceof BrokerError ? err.code : ErrorCode.UNKNOWN_SERVER_ERROR;
}
