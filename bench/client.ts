/**
 * A minimal pipelined Kafka connection for the load generators, on the project's codec.
 *
 * Kafka answers requests on one connection in order, so the connection keeps a FIFO of
 * waiting callbacks instead of a map, and checks each answer's correlation id against the
 * head. Requests can be sent pre-encoded ({@link PreparedRequest}): the frame is encoded once
 * and every send writes a fresh 12-byte prefix (length, key, version, correlation id) and the
 * shared rest of the frame, so a load generator costs next to nothing per request.
 */
import { Socket, connect } from 'node:net';
import {
  ErrorCode,
  FrameDecoder,
  concatFrame,
  decodeResponse,
  encodeRequest,
  type RequestBodyByKey,
  type ResponseBodyByKey,
} from '../wire/index.js';

/** A request encoded once and sent many times. */
export interface PreparedRequest {
  /** Bytes 0–11 of the frame: length prefix, API key, version, correlation id (patched per send). */
  readonly prefix: Buffer;
  /** The rest of the frame (client id, tagged fields, body), shared by every send. */
  readonly rest: Buffer;
  /** Record-batch bytes the request carries (what throughput counts). */
  readonly payloadBytes: number;
  /** Records the request carries. */
  readonly records: number;
}

/** Encodes `body` once for {@link BenchConnection.sendPrepared}. */
export function prepareRequest<K extends keyof RequestBodyByKey>(apiKey: K, version: number, body: RequestBodyByKey[K], payloadBytes = 0, records = 0): PreparedRequest {
  const frame = concatFrame(encodeRequest({ apiKey, apiVersion: version, correlationId: 0, clientId: 'strata-bench' }, body));
  return { prefix: Buffer.from(frame.subarray(0, 12)), rest: frame.subarray(12), payloadBytes, records };
}

type Waiter = (frame: Buffer | Error) => void;

/** One TCP connection to a broker with any number of requests in flight. */
export class BenchConnection {
  readonly #socket: Socket;
  readonly #decoder = new FrameDecoder(1024 * 1024 * 1024);
  readonly #waiting: { correlationId: number; done: Waiter }[] = [];
  #head = 0;
  #nextCorrelation = 1;
  #error: Error | null = null;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.#decoder.push(chunk)) {
        const w = this.#waiting[this.#head];
        if (!w) continue;
        this.#waiting[this.#head++] = undefined as never;
        if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
          this.#waiting.splice(0, this.#head);
          this.#head = 0;
        }
        const id = frame.readInt32BE(0);
        w.done(id === w.correlationId ? frame : new Error(`response correlation id ${id}, expected ${w.correlationId}`));
      }
    });
    const fail = (err: Error): void => {
      this.#error ??= err;
      const waiting = this.#waiting.slice(this.#head);
      this.#waiting.length = 0;
      this.#head = 0;
      for (const w of waiting) w.done(this.#error);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed by the broker')));
  }

  static connect(port: number, host = '127.0.0.1'): Promise<BenchConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port }, () => {
        socket.off('error', reject);
        resolve(new BenchConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Requests sent and not yet answered. */
  get inflight(): number {
    return this.#waiting.length - this.#head;
  }

  /** Sends a pre-encoded request; `done` gets the response frame (without length prefix) or an error. */
  sendPrepared(req: PreparedRequest, done: Waiter): void {
    if (this.#error) {
      done(this.#error);
      return;
    }
    const correlationId = this.#nextCorrelation++;
    // A fresh prefix per send: a shared one could be patched again while still queued.
    const prefix = Buffer.allocUnsafe(12);
    req.prefix.copy(prefix);
    prefix.writeInt32BE(correlationId, 8);
    this.#waiting.push({ correlationId, done });
    this.#socket.cork();
    this.#socket.write(prefix);
    this.#socket.write(req.rest);
    this.#socket.uncork();
  }

  /** Encodes, sends and decodes one request. */
  request<K extends keyof RequestBodyByKey & keyof ResponseBodyByKey>(apiKey: K, version: number, body: RequestBodyByKey[K]): Promise<ResponseBodyByKey[K]> {
    return new Promise((resolve, reject) => {
      if (this.#error) {
        reject(this.#error);
        return;
      }
      const correlationId = this.#nextCorrelation++;
      this.#waiting.push({
        correlationId,
        done: (frame) => {
          if (frame instanceof Error) reject(frame);
          else {
            try {
              resolve(decodeResponse(frame, apiKey, version).body);
            } catch (err) {
              reject(err as Error);
            }
          }
        },
      });
      const chunks = encodeRequest({ apiKey, apiVersion: version, correlationId, clientId: 'strata-bench' }, body);
      this.#socket.cork();
      for (const c of chunks) this.#socket.write(c);
      this.#socket.uncork();
    });
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** Creates a topic (CreateTopics v7); throws with the broker's message unless it was created. */
export async function createTopic(conn: BenchConnection, name: string, partitions: number): Promise<string> {
  const res = await conn.request(19, 7, {
    topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 10_000,
    validateOnly: false,
  });
  const t = res.topics[0]!;
  if (t.errorCode !== ErrorCode.NONE) throw new Error(`creating topic ${name} failed with error ${t.errorCode}: ${t.errorMessage ?? ''}`);
  return t.topicId;
}

/** High watermarks of partitions 0..n-1 (ListOffsets v7, LATEST). */
export async function highWatermarks(conn: BenchConnection, topic: string, partitions: number): Promise<number[]> {
  const res = await conn.request(2, 7, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{ name: topic, partitions: Array.from({ length: partitions }, (_, p) => ({ partitionIndex: p, currentLeaderEpoch: -1, timestamp: -1n, maxNumOffsets: 1 })) }],
    timeoutMs: 0,
  });
  const out = new Array<number>(partitions).fill(0);
  for (const p of res.topics[0]!.partitions) {
    if (p.errorCode !== ErrorCode.NONE) throw new Error(`ListOffsets ${topic}/${p.partitionIndex} failed with error ${p.errorCode}`);
    out[p.partitionIndex] = Number(p.offset);
  }
  return out;
}
