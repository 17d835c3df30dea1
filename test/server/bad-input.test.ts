/**
 * What a broker does with input no well-behaved client sends (docs/architecture.md §3.2): malformed
 * frames, unknown APIs and unadvertised versions close only the offending connection; bad
 * batches fail only their partition; ApiVersions of an unknown version is answered so the
 * client can negotiate. Every test ends by checking that a client connected before the bad
 * input still gets exact answers. Also pins in-order responses for pipelined requests and the
 * silent slot of acks=0.
 */
import { randomBytes } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker.js';
import { parseBrokerConfig } from '../../src/config.js';
import { silentLogger } from '../../src/observability/logger.js';
import {
  ApiKey,
  ErrorCode,
  FrameDecoder,
  ZERO_UUID,
  concatFrame,
  decodeResponse,
  encodeRequest,
  type FetchRequest,
  type MetadataRequest,
  type ProduceRequest,
  type RequestBodyByKey,
} from '../../wire/index.js';
import { encodeBatchSync } from '../../wire/records/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { freePort } from '../helpers/redis.js';
import { RawClient } from '../helpers/raw-client.js';
import { readAll } from '../helpers/read-all.js';
import { sleep } from '../helpers/wait.js';

/** A small limit, so that "one byte over" can be tested without sending megabytes. */
const SOCKET_REQUEST_MAX_BYTES = 1024 * 1024;
const RUN = randomBytes(4).toString('hex');
const WITNESS_TOPIC = `bad-input-witness-${RUN}`;
const TOPIC = `bad-input-${RUN}`;
const SMALL_TOPIC = `bad-input-small-${RUN}`;
const QUIET_TOPIC = `bad-input-quiet-${RUN}`;

/**
 * A bare socket that writes arbitrary bytes, yields every response frame raw in arrival order
 * and sees the broker close the connection. RawClient checks order too (its waiting requests
 * are a FIFO and each answer must carry the oldest one's correlation id), but it drops answers
 * to hand-built frames sent with `writeBytes` and reports disorder only as a failed request;
 * these tests need each frame as it came.
 */
class FrameSocket {
  readonly #socket: Socket;
  readonly #decoder = new FrameDecoder();
  readonly #frames: Buffer[] = [];
  #wake: (() => void) | null = null;
  #closed = false;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.#decoder.push(chunk)) this.#frames.push(f);
      this.#wake?.();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
  }

  static connect(port: number): Promise<FrameSocket> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host: '127.0.0.1', port }, () => {
        socket.off('error', reject);
        resolve(new FrameSocket(socket));
      });
      socket.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Frames received and not yet taken. */
  get pending(): number {
    return this.#frames.length;
  }

  write(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.#socket.write(bytes, (err) => (err ? reject(err) : resolve())));
  }

  /** The next response frame (without its length prefix); rejects on close or after `timeoutMs`. */
  async next(timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.#frames.shift();
      if (f) return f;
      if (this.#closed) throw new Error('connection closed before the expected response');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no response within ${timeoutMs} ms`);
      await this.#until(left);
    }
  }

  /** Resolves once the broker has closed the connection; rejects after `timeoutMs`. */
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`connection still open after ${timeoutMs} ms`);
      await this.#until(left);
    }
  }

  #until(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.#wake = () => {
        this.#wake = null;
        done();
      };
    });
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** A request frame, length prefix included, encoded by the project's codec. */
function requestFrame<K extends keyof RequestBodyByKey>(apiKey: K, apiVersion: number, correlationId: number, body: RequestBodyByKey[K]): Buffer {
  return concatFrame(encodeRequest({ apiKey, apiVersion, correlationId, clientId: 'bad-input' }, body));
}

/** A request header v1 (non-flexible) written by hand, for keys and versions the codec refuses. */
function headerV1(apiKey: number, apiVersion: number, correlationId: number, clientId = 'bad-input'): Buffer {
  const id = Buffer.from(clientId);
  const b = Buffer.alloc(10 + id.length);
  b.writeInt16BE(apiKey, 0);
  b.writeInt16BE(apiVersion, 2);
  b.writeInt32BE(correlationId, 4);
  b.writeInt16BE(id.length, 8);
  id.copy(b, 10);
  return b;
}

function withLength(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const prefix = Buffer.alloc(4);
  prefix.writeInt32BE(body.length, 0);
  return Buffer.concat([prefix, body]);
}

function lengthOnly(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0, 0);
  return b;
}

function batch(values: string[]): Buffer {
  return encodeBatchSync(values.map((v, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from(v), timestamp: 1_700_000_000_000 + i })));
}

function produceBody(topic: string, parts: { partition: number; records: Buffer }[], acks = -1): ProduceRequest {
  return { transactionalId: null, acks, timeoutMs: 5000, topicData: [{ name: topic, partitionData: parts.map((p) => ({ index: p.partition, records: p.records })) }] };
}

function metadataBody(topics: string[] | null): MetadataRequest {
  return {
    topics: topics === null ? null : topics.map((name) => ({ topicId: ZERO_UUID, name })),
    allowAutoTopicCreation: false,
    includeClusterAuthorizedOperations: false,
    includeTopicAuthorizedOperations: false,
  };
}

function fetchBody(topic: string, partition: number, fetchOffset: number, maxWaitMs = 0, minBytes = 0): FetchRequest {
  return {
    clusterId: null,
    replicaId: -1,
    replicaState: { replicaId: -1, replicaEpoch: -1n },
    maxWaitMs,
    minBytes,
    maxBytes: 1024 * 1024,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{ topic, topicId: ZERO_UUID, partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset: BigInt(fetchOffset), lastFetchedEpoch: -1, logStartOffset: -1n, partitionMaxBytes: 1024 * 1024, replicaDirectoryId: ZERO_UUID }] }],
    forgottenTopicsData: [],
    rackId: '',
  };
}

let cluster: Cluster;
let port: number;
/** Connected before any bad input; must keep getting exact answers. */
let witness: RawClient;
let witnessCount = 0;

/** The witness produces one new record and reads exactly it back. */
async function witnessStillServes(): Promise<void> {
  const value = `witness-${witnessCount++}`;
  const produced = await witness.send(0, 9, produceBody(WITNESS_TOPIC, [{ partition: 0, records: batch([value]) }]));
  const p = produced.responses[0]!.partitionResponses[0]!;
  expect(p).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: BigInt(witnessCount - 1) });
  const records = await readAll(`127.0.0.1:${port}`, WITNESS_TOPIC, { fromOffset: witnessCount - 1 });
  expect(records.map((r) => [r.offset, r.value])).toEqual([[witnessCount - 1, value]]);
  const meta = await witness.send(3, 9, metadataBody([WITNESS_TOPIC]));
  expect(meta.topics.map((t) => [t.name, t.errorCode, t.partitions.length])).toEqual([[WITNESS_TOPIC, ErrorCode.NONE, 1]]);
}

/** Sends `bytes` on a fresh connection and expects the broker to close it without answering. */
async function expectClosedBy(bytes: Buffer): Promise<void> {
  const s = await FrameSocket.connect(port);
  try {
    await s.write(bytes).catch(() => undefined);
    await s.waitClosed();
    expect(s.pending).toBe(0);
  } finally {
    s.close();
  }
}

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--socket-request-max-bytes', String(SOCKET_REQUEST_MAX_BYTES), '--flush-bytes', String(SOCKET_REQUEST_MAX_BYTES)] });
  port = cluster.brokers[0]!.port;
  witness = await RawClient.connect(cluster.bootstrap, 'witness');
  const created = await witness.send(19, 5, {
    topics: [
      { name: WITNESS_TOPIC, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
      { name: TOPIC, numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] },
      { name: SMALL_TOPIC, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [{ name: 'max.message.bytes', value: '1024' }] },
      { name: QUIET_TOPIC, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
    ],
    timeoutMs: 10_000,
    validateOnly: false,
  });
  expect(created.topics.map((t) => t.errorCode)).toEqual([ErrorCode.NONE, ErrorCode.NONE, ErrorCode.NONE, ErrorCode.NONE]);
  await witnessStillServes();
});

afterAll(async () => {
  witness?.close();
  await cluster?.stop();
});

describe('malformed frames close the connection', () => {
  it('closes on garbage bytes', async () => {
    // An HTTP request: "GET " read as a length is 1.2 GB, over the limit.
    await expectClosedBy(Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'));
    // A plausible length followed by bytes that are no request header (API key -2).
    await expectClosedBy(withLength(Buffer.from([0xff, 0xfe, 0x13, 0x37, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03])));
    // A frame too short to hold a header, and an empty frame.
    await expectClosedBy(withLength(Buffer.from([0x00, 0x03])));
    await expectClosedBy(withLength());
    expect(witness.closed).toBe(false);
    await witnessStillServes();
  });

  it('closes on a 2 GiB frame length without allocating it', async () => {
    const before = process.memoryUsage().arrayBuffers;
    await expectClosedBy(lengthOnly(0x7fffffff));
    // One byte over the configured limit is refused as soon as the length is read: no body
    // is ever sent, so a broker waiting for it would keep the connection open.
    await expectClosedBy(lengthOnly(SOCKET_REQUEST_MAX_BYTES + 1));
    // The broker runs in this process: a 2 GiB buffer would show here.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(256 * 1024 * 1024);
    await witnessStillServes();
  });

  it('closes on a negative frame length', async () => {
    await expectClosedBy(lengthOnly(0xffffffff));
    await expectClosedBy(lengthOnly(0x80000000));
    await witnessStillServes();
  });

  it('waits for the rest of a truncated request, and keeps serving when the client gives up', async () => {
    const whole = requestFrame(3, 4, 41, metadataBody([TOPIC]));
    const cut = Math.floor(whole.length / 2);

    // The rest arrives later: the request is answered as if sent at once.
    const patient = await FrameSocket.connect(port);
    try {
      await patient.write(whole.subarray(0, cut));
      await sleep(300);
      expect(patient.closed).toBe(false);
      expect(patient.pending).toBe(0);
      await patient.write(whole.subarray(cut));
      const res = decodeResponse(await patient.next(), 3, 4);
      expect(res.correlationId).toBe(41);
      expect(res.body.topics.map((t) => [t.name, t.errorCode])).toEqual([[TOPIC, ErrorCode.NONE]]);
    } finally {
      patient.close();
    }

    // The rest never arrives: waiting is correct; the client closing ends it.
    const quitter = await FrameSocket.connect(port);
    await quitter.write(whole.subarray(0, cut));
    await sleep(300);
    expect(quitter.closed).toBe(false);
    quitter.close();

    const fresh = await RawClient.connect(cluster.bootstrap, 'after-truncated');
    try {
      const meta = await fresh.send(3, 9, metadataBody([TOPIC]));
      expect(meta.topics[0]!.errorCode).toBe(ErrorCode.NONE);
    } finally {
      fresh.close();
    }
    await witnessStillServes();
  });

  it('closes a connection stuck in a truncated request once it has been idle for connections.max.idle.ms', async () => {
    // A broker of its own, since the short idle limit would close the shared witness too.
    const listen = await freePort();
    const config = parseBrokerConfig(
      ['--redis', cluster.redis.url, '--storage', cluster.storageUrl, '--listen', `127.0.0.1:${listen}`, '--flush-ms', '5', '--connections-max-idle-ms', '1000', '--log-retention-ms', '-1'],
      {},
    );
    const idleBroker = new Broker(config, silentLogger());
    await idleBroker.start();
    try {
      const stuck = await FrameSocket.connect(listen);
      try {
        const whole = requestFrame(3, 4, 7, metadataBody([TOPIC]));
        await stuck.write(whole.subarray(0, 10));
        await stuck.waitClosed(15_000);
        expect(stuck.pending).toBe(0);
      } finally {
        stuck.close();
      }
    } finally {
      await idleBroker.stop();
    }
    await witnessStillServes();
  });

  it('closes on a frame whose body is malformed', async () => {
    // Metadata v4: a topics array claiming 1000 entries, then nothing.
    const count = Buffer.alloc(4);
    count.writeInt32BE(1000, 0);
    await expectClosedBy(withLength(headerV1(3, 4, 1), count, Buffer.from([1])));
    // A client id whose length runs past the end of the frame.
    const h = headerV1(3, 4, 2, 'x');
    h.writeInt16BE(500, 8);
    await expectClosedBy(withLength(h));
    // Produce v9 whose records length (compact, 10_000 - 1) runs past the end.
    const good = requestFrame(0, 9, 3, produceBody(TOPIC, [{ partition: 0, records: batch(['never stored']) }]));
    const truncatedRecords = good.subarray(0, good.length - 40);
    truncatedRecords.writeInt32BE(truncatedRecords.length - 4, 0);
    await expectClosedBy(truncatedRecords);
    // Nothing was stored by any of them.
    expect(await readAll(`127.0.0.1:${port}`, TOPIC, { partitions: [0] })).toEqual([]);
    await witnessStillServes();
  });

  it('closes on an unknown API key and on an API Strata does not serve', async () => {
    await expectClosedBy(withLength(headerV1(1000, 0, 5), Buffer.alloc(16)));
    await expectClosedBy(withLength(headerV1(-1, 0, 6), Buffer.alloc(16)));
    // LeaderAndIsr (4) is in the codec but is broker-to-controller only.
    await expectClosedBy(withLength(headerV1(ApiKey.LeaderAndIsr, 1, 7), Buffer.alloc(16)));
    await witnessStillServes();
  });

  it('closes on a version that is not advertised', async () => {
    await expectClosedBy(withLength(headerV1(3, 99, 8), Buffer.alloc(8)));
    // Fetch v3 is in the codec but below the implemented floor of v4 (RecordBatch v2 only).
    await expectClosedBy(requestFrame(1, 3, 9, fetchBody(TOPIC, 0, 0)));
    // Produce v2 *is* advertised (librdkafka reads codec support from Produce v0), so it is
    // answered — per partition, with UNSUPPORTED_VERSION — and the connection stays open.
    const client = await RawClient.connect(cluster.bootstrap, 'produce-v2');
    try {
      const res = await client.send(0, 2, produceBody(TOPIC, [{ partition: 0, records: batch(['old format']) }]));
      expect(res.responses[0]!.partitionResponses.map((p) => [p.index, p.errorCode])).toEqual([[0, ErrorCode.UNSUPPORTED_VERSION]]);
      const meta = await client.send(3, 9, metadataBody([TOPIC]));
      expect(meta.topics[0]!.errorCode).toBe(ErrorCode.NONE);
    } finally {
      client.close();
    }
    expect(await readAll(`127.0.0.1:${port}`, TOPIC, { partitions: [0] })).toEqual([]);
    await witnessStillServes();
  });
});

describe('ApiVersions of an unknown version', () => {
  it('answers v0 with UNSUPPORTED_VERSION and the supported ranges, and the connection stays usable', async () => {
    const s = await FrameSocket.connect(port);
    try {
      // A v99 request carries a body the broker cannot know; it must not matter.
      await s.write(withLength(headerV1(ApiKey.ApiVersions, 99, 777), Buffer.from([0x00, 0x07, 0x66, 0x75, 0x74, 0x75, 0x72, 0x65])));
      const res = decodeResponse(await s.next(), ApiKey.ApiVersions, 0);
      expect(res.correlationId).toBe(777);
      expect(res.body.errorCode).toBe(ErrorCode.UNSUPPORTED_VERSION);
      const ranges = new Map(res.body.apiKeys.map((k) => [k.apiKey, [k.minVersion, k.maxVersion]]));
      expect(ranges.get(ApiKey.Produce)).toEqual([0, 11]);
      expect(ranges.get(ApiKey.Fetch)).toEqual([4, 17]);
      expect(ranges.get(ApiKey.ApiVersions)?.[0]).toBe(0);
      expect(ranges.get(ApiKey.ApiVersions)?.[1]).toBeGreaterThanOrEqual(3);
      // The client retries with a version from the list, on the same connection.
      await s.write(requestFrame(ApiKey.ApiVersions, 3, 778, { clientSoftwareName: 'bad-input', clientSoftwareVersion: '1' }));
      const again = decodeResponse(await s.next(), ApiKey.ApiVersions, 3);
      expect(again.correlationId).toBe(778);
      expect(again.body.errorCode).toBe(ErrorCode.NONE);
      expect(again.body.apiKeys.map((k) => [k.apiKey, k.minVersion, k.maxVersion])).toEqual(res.body.apiKeys.map((k) => [k.apiKey, k.minVersion, k.maxVersion]));
      expect(s.closed).toBe(false);
    } finally {
      s.close();
    }
    await witnessStillServes();
  });
});

describe('bad batches fail only their partition', () => {
  let client: RawClient;

  beforeAll(async () => {
    client = await RawClient.connect(cluster.bootstrap, 'bad-batches');
  });

  afterAll(() => client?.close());

  it('answers CORRUPT_MESSAGE for a batch whose CRC does not match, and stores the other partition', async () => {
    const bad = batch(['corrupt']);
    bad[bad.length - 1]! ^= 0x55;
    const res = await client.send(0, 9, produceBody(TOPIC, [
      { partition: 0, records: bad },
      { partition: 1, records: batch(['crc-neighbour']) },
    ]));
    const parts = res.responses[0]!.partitionResponses;
    expect(parts[0]).toMatchObject({ index: 0, errorCode: ErrorCode.CORRUPT_MESSAGE, baseOffset: -1n });
    expect(parts[1]).toMatchObject({ index: 1, errorCode: ErrorCode.NONE, baseOffset: 0n });
    const stored = await readAll(`127.0.0.1:${port}`, TOPIC);
    expect(stored.map((r) => [r.partition, r.offset, r.value])).toEqual([[1, 0, 'crc-neighbour']]);
    await witnessStillServes();
  });

  it('refuses a batch of magic 1 (message format v1) and stores the other partition', async () => {
    const old = batch(['magic one']);
    old.writeInt8(1, 16); // magic is not covered by the CRC, which starts at the attributes
    const res = await client.send(0, 9, produceBody(TOPIC, [
      { partition: 0, records: old },
      { partition: 1, records: batch(['magic-neighbour']) },
    ]));
    const parts = res.responses[0]!.partitionResponses;
    expect([ErrorCode.CORRUPT_MESSAGE, ErrorCode.INVALID_RECORD]).toContain(parts[0]!.errorCode);
    expect(parts[0]!.index).toBe(0);
    expect(parts[1]).toMatchObject({ index: 1, errorCode: ErrorCode.NONE, baseOffset: 1n });
    const stored = await readAll(`127.0.0.1:${port}`, TOPIC);
    expect(stored.map((r) => [r.partition, r.offset, r.value])).toEqual([
      [1, 0, 'crc-neighbour'],
      [1, 1, 'magic-neighbour'],
    ]);
    await witnessStillServes();
  });

  it('answers MESSAGE_TOO_LARGE for a batch over the topic max.message.bytes', async () => {
    const big = batch(['x'.repeat(2000)]);
    const small = batch(['fits']);
    expect(big.length).toBeGreaterThan(1024);
    expect(small.length).toBeLessThan(1024);
    const res = await client.send(0, 9, produceBody(SMALL_TOPIC, [{ partition: 0, records: big }]));
    expect(res.responses[0]!.partitionResponses[0]).toMatchObject({ index: 0, errorCode: ErrorCode.MESSAGE_TOO_LARGE, baseOffset: -1n });
    const ok = await client.send(0, 9, produceBody(SMALL_TOPIC, [{ partition: 0, records: small }]));
    expect(ok.responses[0]!.partitionResponses[0]).toMatchObject({ index: 0, errorCode: ErrorCode.NONE, baseOffset: 0n });
    const stored = await readAll(`127.0.0.1:${port}`, SMALL_TOPIC);
    expect(stored.map((r) => [r.offset, r.value])).toEqual([[0, 'fits']]);
    await witnessStillServes();
  });

  it('answers INVALID_REQUIRED_ACKS for acks=5 and stores nothing', async () => {
    const hwBefore = (await readAll(`127.0.0.1:${port}`, TOPIC)).length;
    const res = await client.send(0, 9, produceBody(TOPIC, [
      { partition: 0, records: batch(['acks five']) },
      { partition: 1, records: batch(['acks five']) },
    ], 5));
    expect(res.responses[0]!.partitionResponses.map((p) => [p.index, p.errorCode])).toEqual([
      [0, ErrorCode.INVALID_REQUIRED_ACKS],
      [1, ErrorCode.INVALID_REQUIRED_ACKS],
    ]);
    expect((await readAll(`127.0.0.1:${port}`, TOPIC)).length).toBe(hwBefore);
    await witnessStillServes();
  });
});

describe('ordering on one connection', () => {
  it('answers 50 pipelined requests in request order, a long-poll Fetch before the Metadata after it', async () => {
    const s = await FrameSocket.connect(port);
    const kinds: { apiKey: number; version: number }[] = [];
    const frames: Buffer[] = [];
    const add = <K extends keyof RequestBodyByKey>(apiKey: K, version: number, body: RequestBodyByKey[K]): void => {
      kinds.push({ apiKey, version });
      frames.push(requestFrame(apiKey, version, kinds.length, body));
    };
    const LONG_POLL_AT = 10;
    for (let i = 0; i < 50; i++) {
      if (i === LONG_POLL_AT) add(1, 11, fetchBody(QUIET_TOPIC, 0, 0, 500, 1));
      else if (i % 5 === 0) add(18, 3, { clientSoftwareName: 'pipeline', clientSoftwareVersion: '1' });
      else if (i % 5 === 1) add(0, 9, produceBody(WITNESS_TOPIC, [{ partition: 0, records: batch([`pipelined-${i}`]) }]));
      else if (i % 5 === 2) add(1, 11, fetchBody(WITNESS_TOPIC, 0, 0));
      else add(3, i % 2 === 0 ? 9 : 4, metadataBody([TOPIC]));
    }
    try {
      await s.write(Buffer.concat(frames));
      const seen: number[] = [];
      let producedBase = -1;
      for (let i = 0; i < 50; i++) {
        const frame = await s.next(20_000);
        const correlationId = frame.readInt32BE(0);
        seen.push(correlationId);
        const kind = kinds[correlationId - 1];
        expect(kind).toBeDefined();
        // Each answer decodes as the request it claims to answer.
        if (kind!.apiKey === 1 && correlationId === LONG_POLL_AT + 1) {
          const fetch = decodeResponse(frame, 1, 11).body;
          expect(fetch.responses[0]!.partitions[0]).toMatchObject({ errorCode: ErrorCode.NONE, highWatermark: 0n });
        } else if (kind!.apiKey === 0) {
          const produced = decodeResponse(frame, 0, 9).body.responses[0]!.partitionResponses[0]!;
          expect(produced.errorCode).toBe(ErrorCode.NONE);
          // Pipelined produces of one partition get offsets in request order.
          expect(Number(produced.baseOffset)).toBeGreaterThan(producedBase);
          producedBase = Number(produced.baseOffset);
        } else if (kind!.apiKey === 3) {
          expect(decodeResponse(frame, 3, kind!.version).body.topics[0]!.errorCode).toBe(ErrorCode.NONE);
        }
      }
      expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(s.closed).toBe(false);
    } finally {
      s.close();
    }
    // The pipelined produces advanced the witness partition; resynchronise its count.
    witnessCount = (await readAll(`127.0.0.1:${port}`, WITNESS_TOPIC)).length;
    await witnessStillServes();
  });

  it('answers 2000 pipelined requests, far past the in-flight bound, all in order', async () => {
    const s = await FrameSocket.connect(port);
    const COUNT = 2000;
    const frames: Buffer[] = [];
    for (let i = 1; i <= COUNT; i++) {
      frames.push(i % 2 === 0 ? requestFrame(3, 9, i, metadataBody([TOPIC])) : requestFrame(18, 3, i, { clientSoftwareName: 'flood', clientSoftwareVersion: '1' }));
    }
    try {
      await s.write(Buffer.concat(frames));
      const seen: number[] = [];
      for (let i = 0; i < COUNT; i++) seen.push((await s.next(30_000)).readInt32BE(0));
      expect(seen).toEqual(Array.from({ length: COUNT }, (_, i) => i + 1));
    } finally {
      s.close();
    }
    await witnessStillServes();
  });

  // Kafka handles one request per connection at a time, so pipelined produces of a partition
  // are appended in request order. Strata runs handlers concurrently; a request that names
  // several topics awaits one topic lookup per topic before appending, so a later request
  // naming only the last topic can reach the ingest buffer first.
  it('appends pipelined produces of one partition in request order when a request names several topics', async () => {
    const s = await FrameSocket.connect(port);
    const topicA = `order-a-${RUN}`;
    const topicB = `order-b-${RUN}`;
    try {
      const created = await witness.send(19, 5, {
        topics: [
          { name: topicA, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
          { name: topicB, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
        ],
        timeoutMs: 10_000,
        validateOnly: false,
      });
      expect(created.topics.map((t) => t.errorCode)).toEqual([ErrorCode.NONE, ErrorCode.NONE]);
      const twoTopics: ProduceRequest = {
        transactionalId: null,
        acks: -1,
        timeoutMs: 5000,
        topicData: [
          { name: topicA, partitionData: [{ index: 0, records: batch(['first-a']) }] },
          { name: topicB, partitionData: [{ index: 0, records: batch(['first-b']) }] },
        ],
      };
      await s.write(Buffer.concat([
        requestFrame(0, 9, 601, twoTopics),
        requestFrame(0, 9, 602, produceBody(topicB, [{ partition: 0, records: batch(['second-b']) }])),
      ]));
      const first = decodeResponse(await s.next(), 0, 9);
      const second = decodeResponse(await s.next(), 0, 9);
      expect([first.correlationId, second.correlationId]).toEqual([601, 602]);
      const firstB = first.body.responses.find((r) => r.name === topicB)!.partitionResponses[0]!;
      const secondB = second.body.responses[0]!.partitionResponses[0]!;
      expect([firstB.errorCode, secondB.errorCode]).toEqual([ErrorCode.NONE, ErrorCode.NONE]);
      expect(await readAll(`127.0.0.1:${port}`, topicB).then((rs) => rs.map((r) => r.value))).toEqual(['first-b', 'second-b']);
      expect([firstB.baseOffset, secondB.baseOffset]).toEqual([0n, 1n]);
    } finally {
      s.close();
    }
    await witnessStillServes();
  });

  it('answers nothing to an acks=0 produce, and the next request gets its own correlation id', async () => {
    const s = await FrameSocket.connect(port);
    try {
      await s.write(Buffer.concat([
        requestFrame(0, 9, 500, produceBody(QUIET_TOPIC, [{ partition: 0, records: batch(['fire and forget']) }], 0)),
        requestFrame(3, 9, 501, metadataBody([QUIET_TOPIC])),
      ]));
      const first = decodeResponse(await s.next(), 3, 9);
      expect(first.correlationId).toBe(501);
      expect(first.body.topics[0]!.errorCode).toBe(ErrorCode.NONE);
      // The acks=0 record is stored even though nobody was told.
      let stored: string[] = [];
      for (let i = 0; i < 100 && stored.length === 0; i++) {
        stored = (await readAll(`127.0.0.1:${port}`, QUIET_TOPIC)).map((r) => r.value ?? '');
        if (stored.length === 0) await sleep(50);
      }
      expect(stored).toEqual(['fire and forget']);
      // And still no frame for correlation id 500 arrived.
      await s.write(requestFrame(18, 3, 502, { clientSoftwareName: 'acks0', clientSoftwareVersion: '1' }));
      const second = await s.next();
      expect(second.readInt32BE(0)).toBe(502);
      expect(s.pending).toBe(0);
    } finally {
      s.close();
    }
    await witnessStillServes();
  });

  it('closes the connection of an acks=0 produce that failed, as Kafka does, storing nothing', async () => {
    const s = await FrameSocket.connect(port);
    try {
      const before = (await readAll(`127.0.0.1:${port}`, QUIET_TOPIC)).length;
      await s.write(requestFrame(0, 9, 600, produceBody(QUIET_TOPIC, [{ partition: 99, records: batch(['nowhere to go']) }], 0)));
      await s.waitClosed();
      expect(s.pending).toBe(0);
      expect((await readAll(`127.0.0.1:${port}`, QUIET_TOPIC)).length).toBe(before);
    } finally {
      s.close();
    }
    await witnessStillServes();
  });
});
