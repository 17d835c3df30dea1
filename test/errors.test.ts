/** Broker fault classes and their mapping to Kafka error codes (docs/architecture.md §3.2). */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../wire/index.js';
import {
  BrokerError,
  BrokerTimeoutError,
  ConfigError,
  LostLeaseError,
  ObjectNotFoundError,
  RedisUnavailableError,
  StorageError,
  toKafkaErrorCode,
} from '../src/errors.js';

describe('BrokerError subclasses', () => {
  const cause = new Error('underlying');

  it.each([
    ['StorageError', new StorageError('s3 down', { cause }), ErrorCode.KAFKA_STORAGE_ERROR, true],
    ['RedisUnavailableError', new RedisUnavailableError('redis down', { cause }), ErrorCode.REQUEST_TIMED_OUT, true],
    ['LostLeaseError', new LostLeaseError('lease lost', { cause }), ErrorCode.NOT_COORDINATOR, true],
    ['BrokerTimeoutError', new BrokerTimeoutError('too slow', { cause }), ErrorCode.REQUEST_TIMED_OUT, true],
  ])('%s carries code, retriable, cause and name', (name, err, code, retriable) => {
    expect(err).toBeInstanceOf(BrokerError);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ name, code, retriable });
    expect(err.cause).toBe(cause);
    expect(toKafkaErrorCode(err)).toBe(code);
  });

  it('lets a caller override retriable', () => {
    expect(new StorageError('access denied', { retriable: false }).retriable).toBe(false);
  });

  it('ObjectNotFoundError is a non-retriable StorageError naming the key', () => {
    const err = new ObjectNotFoundError('topics/t/0/42', { cause });
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({
      name: 'ObjectNotFoundError',
      key: 'topics/t/0/42',
      code: ErrorCode.KAFKA_STORAGE_ERROR,
      retriable: false,
      message: 'object "topics/t/0/42" does not exist',
    });
    expect(err.cause).toBe(cause);
  });

  it('leaves cause unset when none is given', () => {
    expect('cause' in new StorageError('x')).toBe(false);
  });
});

describe('toKafkaErrorCode', () => {
  it.each([[new Error('bug')], [new TypeError('bug')], ['a string'], [undefined], [null], [new ConfigError('bad flag')]])(
    'maps %s to UNKNOWN_SERVER_ERROR',
    (value) => {
      expect(toKafkaErrorCode(value)).toBe(ErrorCode.UNKNOWN_SERVER_ERROR);
    },
  );
});
