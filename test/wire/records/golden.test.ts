import { describe, expect, it } from 'vitest';
import {
  checkProducedBatch,
  Compression,
  compressionName,
  decodeBatch,
  encodeBatchSync,
  splitBatches,
  TimestampType,
  type KafkaRecord,
} from '../../../wire/records/index.js';
import { fixture, FIXTURES, type FixtureExpectation } from '../../helpers/records.js';

/** Records as plain data, with bytes as UTF-8 text like the expectation files. */
function plain(records: KafkaRecord[]): FixtureExpectation['records'] {
  return records.map((r) => ({
    offset: r.offset,
    timestamp: r.timestamp,
    key: r.key === null ? null : r.key.toString('utf8'),
    value: r.value === null ? null : r.value.toString('utf8'),
    headers: r.headers.map((h) => ({ key: h.key, value: h.value === null ? null : h.value.toString('utf8') })),
  }));
}

describe('batches captured from real clients', () => {
  for (const name of FIXTURES) {
    describe(name, () => {
      const { bytes, expected } = fixture(name);

      it('splits into one view whose header matches what the client was asked to send', () => {
        const views = splitBatches(bytes);
        expect(views).toHaveLength(1);
        const view = views[0]!;
        expect(view.sizeInBytes).toBe(bytes.length);
        expect(view.magic).toBe(2);
        expect(view.verifyCrc()).toBe(true);
        expect(view.isControl).toBe(false);
        expect(view.timestampType).toBe(TimestampType.CREATE_TIME);
        expect(compressionName[view.compression]).toBe(expected.batch.compression);
        const header: Record<string, number | string | boolean> = {
          baseOffset: view.baseOffset,
          partitionLeaderEpoch: view.partitionLeaderEpoch,
          compression: compressionName[view.compression],
          isTransactional: view.isTransactional,
          isControl: view.isControl,
          producerId: view.producerId,
          producerEpoch: view.producerEpoch,
          baseSequence: view.baseSequence,
          baseTimestamp: view.baseTimestamp,
          maxTimestamp: view.maxTimestamp,
          lastOffsetDelta: view.lastOffsetDelta,
          recordCount: view.recordCount,
        };
        for (const [field, value] of Object.entries(expected.batch)) expect([field, header[field]]).toEqual([field, value]);
      });

      it('decodes to exactly the records that were produced', async () => {
        const batch = await decodeBatch(bytes);
        const records = plain(batch.records);
        if (expected.timestampsBetween === undefined) {
          expect(records).toEqual(expected.records);
        } else {
          const [from, to] = expected.timestampsBetween;
          for (const r of records) {
            expect(r.timestamp).toBeGreaterThanOrEqual(from);
            expect(r.timestamp).toBeLessThanOrEqual(to);
          }
          expect(records.map(({ timestamp: _t, ...rest }) => rest)).toEqual(expected.records);
        }
      });

      it('passes the checks Kafka applies to a produced batch', () => {
        expect(checkProducedBatch(splitBatches(bytes)[0]!)).toBeNull();
      });
    });
  }

  it('re-encodes the librdkafka uncompressed batch byte for byte', async () => {
    const { bytes } = fixture('librdkafka-none');
    const decoded = await decodeBatch(bytes);
    const again = encodeBatchSync(
      decoded.records.map((r) => ({ key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp })),
      { partitionLeaderEpoch: 0, compression: Compression.NONE },
    );
    expect(again.equals(bytes)).toBe(true);
  });

  it('re-encodes the kafkajs uncompressed batch byte for byte', async () => {
    const { bytes } = fixture('kafkajs-none');
    const decoded = await decodeBatch(bytes);
    // kafkajs writes producerEpoch 0 and baseSequence 0 even without a producer id.
    const again = encodeBatchSync(
      decoded.records.map((r) => ({ key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp })),
      { partitionLeaderEpoch: 0, producerEpoch: 0, baseSequence: 0 },
    );
    expect(again.equals(bytes)).toBe(true);
  });

  it('finds all batches when captured batches are concatenated', () => {
    const parts = FIXTURES.map((name) => fixture(name).bytes);
    const views = splitBatches(Buffer.concat(parts));
    expect(views.map((v) => v.sizeInBytes)).toEqual(parts.map((p) => p.length));
    expect(views.map((v) => compressionName[v.compression])).toEqual([
      'none',
      'gzip',
      'none',
      'gzip',
      'snappy',
      'lz4',
      'zstd',
      'snappy',
    ]);
  });
});
