import { EncodeError } from './errors.js';

/**
 * Kafka UUIDs (topic ids, directory ids) travel as 16 raw bytes; in memory they are the
 * 22-character unpadded base64url form that Kafka's own tools print (e.g. `kafka-topics
 * --describe`), which also makes them usable as map keys and in Redis key names.
 */
export const ZERO_UUID = 'AAAAAAAAAAAAAAAAAAAAAA';

export function uuidFromBytes(buf: Buffer, at: number): string {
  return buf.toString('base64url', at, at + 16);
}

/** Writes a UUID string into `buf` at `at`; throws EncodeError unless it holds 16 bytes. */
export function writeUuidBytes(uuid: string, buf: Buffer, at: number): void {
  if (uuid.length !== 22) throw new EncodeError(`uuid "${uuid}" is not 22 base64url characters`);
  const written = buf.write(uuid, at, 16, 'base64url');
  if (written !== 16) throw new EncodeError(`uuid "${uuid}" does not decode to 16 bytes`);
}
