import { describe, expect, it } from 'vitest';
import {
  BATCH_HEADER_SIZE,
  BatchAttribute,
  ControlRecordType,
  decodeBatchSync,
  decodeControlBatch,
  decodeControlKey,
  decodeEndTxnMarkerValue,
  encodeBatchSync,
  encodeControlBatch,
  encodeControlKey,
  encodeEndTxnMarkerValue,
  RecordBatchView,
  splitBatches,
} from '../../../wire/records/index.js';
import { wireErrorOf } from '../../helpers/records.js';

describe('control records', () => {
  it('encodes keys and end-transaction marker values in the Kafka layout', () => {
    expect(encodeControlKey(ControlRecordType.ABORT).toString('hex')).toBe('00000000');
    expect(encodeControlKey(ControlRecordType.COMMIT).toString('hex')).toBe('00000001');
    expect(encodeEndTxnMarkerValue(0x01020304).toString('hex')).toBe('000001020304');
    expect(decodeControlKey(Buffer.from('00000001', 'hex'))).toBe(ControlRecordType.COMMIT);
    expect(decodeEndTxnMarkerValue(Buffer.from('000000000007', 'hex'))).toBe(7);
  });

  it('reads newer key and value versions, which may append fields', () => {
    expect(decodeControlKey(Buffer.from('00010000ffff', 'hex'))).toBe(ControlRecordType.ABORT);
    expect(decodeEndTxnMarkerValue(Buffer.from('00030000002aabcdef', 'hex'))).toBe(42);
  });

  it('rejects short, null or negative-version keys and values', () => {
    expect(wireErrorOf(() => decodeControlKey(Buffer.from('000000', 'hex'))).message).toBe('control record key has 3 bytes; it needs 4');
    expect(wireErrorOf(() => decodeControlKey(null)).message).toBe('control record key has no bytes; it needs 4');
    expect(wireErrorOf(() => decodeControlKey(Buffer.from('ffff0001', 'hex'))).message).toBe('control record key version -1 is negative');
    expect(wireErrorOf(() => decodeEndTxnMarkerValue(Buffer.from('0000000000', 'hex'))).message).toBe(
      'end transaction marker value has 5 bytes; it needs 6',
    );
    expect(wireErrorOf(() => decodeEndTxnMarkerValue(null)).message).toBe('end transaction marker value has no bytes; it needs 6');
    expect(wireErrorOf(() => decodeEndTxnMarkerValue(Buffer.from('ffff00000000', 'hex'))).message).toBe(
      'end transaction marker version -1 is negative',
    );
  });

  for (const type of [ControlRecordType.COMMIT, ControlRecordType.ABORT]) {
    it(`round-trips a ${type === ControlRecordType.COMMIT ? 'COMMIT' : 'ABORT'} marker batch`, () => {
      const bytes = encodeControlBatch({
        type,
        coordinatorEpoch: 17,
        producerId: 9_001,
        producerEpoch: 5,
        timestamp: 1_700_000_000_500,
        baseOffset: 250,
        partitionLeaderEpoch: 3,
      });
      const [view] = splitBatches(bytes);
      expect([view!.attributes, view!.isControl, view!.isTransactional, view!.recordCount, view!.lastOffsetDelta]).toEqual([
        BatchAttribute.CONTROL | BatchAttribute.TRANSACTIONAL,
        true,
        true,
        1,
        0,
      ]);
      expect([view!.producerId, view!.producerEpoch, view!.baseSequence, view!.partitionLeaderEpoch]).toEqual([9_001, 5, -1, 3]);
      expect([view!.baseTimestamp, view!.maxTimestamp, view!.verifyCrc()]).toEqual([1_700_000_000_500, 1_700_000_000_500, true]);
      // Record length 16 (zigzag 0x20), attributes, timestampDelta 0, offsetDelta 0,
      // key of 4 bytes (version 0, type), value of 6 bytes (version 0, epoch 17), 0 headers.
      expect(bytes.subarray(BATCH_HEADER_SIZE).toString('hex')).toBe(`20000000080000000${type}0c00000000001100`);
      expect(decodeControlBatch(bytes)).toEqual({
        type,
        coordinatorEpoch: 17,
        producerId: 9_001,
        producerEpoch: 5,
        baseOffset: 250,
        timestamp: 1_700_000_000_500,
      });
      expect(decodeControlBatch(view!)).toEqual(decodeControlBatch(bytes));
    });
  }

  it('refuses a data batch, an empty control batch and non-marker control types', () => {
    const data = encodeBatchSync([{ value: Buffer.from('x'), timestamp: 0 }]);
    expect(wireErrorOf(() => decodeControlBatch(data)).message).toBe('record batch is not a control batch (attribute bit 5 is clear)');
    const empty = encodeBatchSync([], { isControl: true, isTransactional: true, lastOffsetDelta: 0 });
    expect(wireErrorOf(() => decodeControlBatch(empty)).message).toBe('control batch holds no record');
    const leaderChange = encodeBatchSync([{ key: encodeControlKey(2), value: Buffer.from('00000000', 'hex'), timestamp: 0 }], {
      isControl: true,
    });
    expect(wireErrorOf(() => decodeControlBatch(leaderChange)).message).toBe(
      'control record type 2 is not a transaction marker (0 ABORT, 1 COMMIT)',
    );
  });

  it('is a control batch to the generic decoder too', () => {
    const bytes = encodeControlBatch({ type: ControlRecordType.ABORT, coordinatorEpoch: 0, producerId: 1, producerEpoch: 0, timestamp: 0 });
    const batch = decodeBatchSync(new RecordBatchView(bytes));
    expect([batch.isControl, batch.records.length, batch.records[0]!.key!.toString('hex')]).toEqual([true, 1, '00000000']);
  });
});
