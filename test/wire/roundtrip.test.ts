/**
 * Property round-trips for every API key × every version × request and response:
 * encode → decode gives the same value, and decode → encode gives the same bytes.
 */
import { describe, expect, it } from 'vitest';
import {
  API_CODECS,
  API_INFO,
  EncodeError,
  Reader,
  Writer,
  concatFrame,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  decodeConsumerProtocolAssignment,
  encodeConsumerProtocolAssignment,
  decodeConsumerProtocolSubscription,
  encodeConsumerProtocolSubscription,
} from '../../wire/index.js';
import { Rng, apis, dataSchema, randomMessage, versionsOf } from '../helpers/arbitrary.js';

const SAMPLES = 6;

function encodeWith(encode: (w: Writer, v: number, body: never) => void, v: number, body: unknown): Buffer {
  const w = new Writer(16);
  encode(w, v, body as never);
  return w.finishBuffer();
}

describe('generated codec round-trips', () => {
  it('covers all 88 API keys with dense keys', () => {
    expect(apis().length).toBe(88);
    expect(API_INFO.length).toBe(88);
    expect(API_CODECS.length).toBe(88);
    apis().forEach((a, i) => {
      expect(API_INFO[i]!.apiKey).toBe(i);
      expect(API_INFO[i]!.name).toBe(a.name);
      expect(API_INFO[i]!.maxVersion).toBe(a.request.validVersions.max);
    });
  });

  for (const api of apis()) {
    for (const side of ['request', 'response'] as const) {
      const msg = api[side];
      it(`${api.apiKey} ${msg.name} v${msg.validVersions.min}-${msg.validVersions.max}`, () => {
        const codec = API_CODECS[api.apiKey]!;
        const encode = side === 'request' ? codec.encodeRequest : codec.encodeResponse;
        const decode = side === 'request' ? codec.decodeRequest : codec.decodeResponse;
        for (const v of versionsOf(msg)) {
          const rng = new Rng(api.apiKey * 1000 + v * 10 + (side === 'request' ? 1 : 2));
          for (let i = 0; i < SAMPLES; i++) {
            const value = randomMessage(rng, msg, v);
            const bytes = encodeWith(encode, v, value);
            const r = new Reader(bytes);
            const decoded = decode(r, v);
            expect(r.remaining, `${msg.name} v${v} left bytes unread`).toBe(0);
            expect(decoded, `${msg.name} v${v} sample ${i}`).toEqual(value);
            expect(encodeWith(encode, v, decoded).equals(bytes), `${msg.name} v${v} re-encode`).toBe(true);
          }
        }
      });
    }
  }
});

describe('framing with headers', () => {
  it('encodeRequest/decodeRequest round-trip every API at its lowest and highest version', () => {
    for (const api of apis()) {
      for (const v of [api.request.validVersions.min, api.request.validVersions.max]) {
        const body = randomMessage(new Rng(v + 7), api.request, v);
        const header = { apiKey: api.apiKey, apiVersion: v, correlationId: 0x1234, clientId: api.apiKey % 2 ? 'client-x' : null };
        const frame = concatFrame(encodeRequest(header as never, body as never));
        expect(frame.readInt32BE(0)).toBe(frame.length - 4);
        const decoded = decodeRequest(frame.subarray(4));
        // Header v0 (ControlledShutdown v0) has no client id.
        const expectedClientId = api.apiKey === 7 && v === 0 ? null : header.clientId;
        expect(decoded.header).toEqual({ ...header, clientId: expectedClientId });
        expect(decoded.body).toEqual(body);
      }
    }
  });

  it('encodeResponse/decodeResponse round-trip every API at its lowest and highest version', () => {
    for (const api of apis()) {
      for (const v of [api.response.validVersions.min, api.response.validVersions.max]) {
        const body = randomMessage(new Rng(v + 11), api.response, v);
        const frame = concatFrame(encodeResponse(api.apiKey as never, v, 99, body as never));
        expect(frame.readInt32BE(0)).toBe(frame.length - 4);
        const decoded = decodeResponse(frame.subarray(4), api.apiKey as never, v);
        expect(decoded.correlationId).toBe(99);
        expect(decoded.body).toEqual(body);
      }
    }
  });

  it('writes the ApiVersions v3 response header as v0 (no tagged fields), other flexible responses as v1', () => {
    const apiVersions = concatFrame(
      encodeResponse(18, 3, 5, {
        errorCode: 0,
        apiKeys: [],
        throttleTimeMs: 0,
        supportedFeatures: [],
        finalizedFeaturesEpoch: -1n,
        finalizedFeatures: [],
        zkMigrationReady: false,
      }),
    );
    // length, correlation id, then the body starts at once with errorCode int16 = 0.
    expect(apiVersions.subarray(4, 10).toString('hex')).toBe('000000050000');
    const heartbeat = concatFrame(encodeResponse(12, 4, 5, { throttleTimeMs: 0, errorCode: 0 }));
    // correlation id, then an empty tagged-field section (0x00), then throttleTimeMs.
    expect(heartbeat.subarray(4).toString('hex')).toBe('00000005' + '00' + '00000000' + '0000' + '00');
  });

  it('passes records given as a list of buffers through without copying and with the summed length', () => {
    const a = Buffer.alloc(300, 1);
    const b = Buffer.alloc(500, 2);
    const chunks = encodeResponse(1, 4, 1, {
      throttleTimeMs: 0,
      errorCode: 0,
      sessionId: 0,
      responses: [
        {
          topic: 't',
          topicId: 'AAAAAAAAAAAAAAAAAAAAAA',
          partitions: [
            {
              partitionIndex: 0,
              errorCode: 0,
              highWatermark: 10n,
              lastStableOffset: 10n,
              logStartOffset: 0n,
              divergingEpoch: { epoch: -1, endOffset: -1n },
              currentLeader: { leaderId: -1, leaderEpoch: -1 },
              snapshotId: { endOffset: -1n, epoch: -1 },
              abortedTransactions: null,
              preferredReadReplica: -1,
              records: [a, b],
            },
          ],
        },
      ],
      nodeEndpoints: [],
    });
    expect(chunks.includes(a)).toBe(true);
    expect(chunks.includes(b)).toBe(true);
    const frame = concatFrame(chunks);
    const { body } = decodeResponse(frame.subarray(4), 1, 4);
    const records = body.responses[0]!.partitions[0]!.records as Buffer;
    expect(records.length).toBe(800);
    expect(records.equals(Buffer.concat([a, b]))).toBe(true);
  });
});

describe('encoder version checks', () => {
  it('refuses a non-ignorable field the version cannot carry', () => {
    // JoinGroup.GroupInstanceId arrives in v5 and is not ignorable.
    const body = {
      groupId: 'g',
      sessionTimeoutMs: 10000,
      rebalanceTimeoutMs: 10000,
      memberId: '',
      groupInstanceId: 'static-1',
      protocolType: 'consumer',
      protocols: [],
      reason: null,
    };
    expect(() => encodeRequest({ apiKey: 11, apiVersion: 4, correlationId: 1, clientId: null }, body)).toThrow(EncodeError);
    expect(() => encodeRequest({ apiKey: 11, apiVersion: 5, correlationId: 1, clientId: null }, body)).not.toThrow();
  });

  it('refuses null in a field that is not nullable in that version', () => {
    // Metadata.Topics may be null (all topics) from v1 on; v0 has no way to say it.
    const body = { topics: null, allowAutoTopicCreation: true, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false };
    expect(() => encodeRequest({ apiKey: 3, apiVersion: 0, correlationId: 1, clientId: null }, body)).toThrow(EncodeError);
    expect(() => encodeRequest({ apiKey: 3, apiVersion: 1, correlationId: 1, clientId: null }, body)).not.toThrow();
  });
});

describe('consumer protocol data schemas', () => {
  for (const [name, encode, decode] of [
    ['ConsumerProtocolSubscription', encodeConsumerProtocolSubscription, decodeConsumerProtocolSubscription],
    ['ConsumerProtocolAssignment', encodeConsumerProtocolAssignment, decodeConsumerProtocolAssignment],
  ] as const) {
    it(`${name} round-trips every version`, () => {
      const msg = dataSchema(name);
      for (const v of versionsOf(msg)) {
        const rng = new Rng(v);
        for (let i = 0; i < SAMPLES; i++) {
          const value = randomMessage(rng, msg, v);
          const bytes = encodeWith(encode as never, v, value);
          const decoded = (decode as (r: Reader, v: number) => unknown)(new Reader(bytes), v);
          expect(decoded).toEqual(value);
        }
      }
    });
  }
});
