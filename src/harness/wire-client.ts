/**
 * The one raw Kafka client: a single connection over the project's own codec, for the CLI's
 * admin commands (`strata groups`), the tests (exact control of what is sent, exact views of
 * what comes back) and the benchmark's load generators. No retries, no metadata, no routing:
 * callers report errors.
 *
 * Kafka answers the requests on one connection in order, so the waiting requests are a FIFO
 * and each answer is checked against the oldest one's correlation id; any number may be in
 * flight. Requests can be sent pre-encoded ({@link PreparedRequest}): the frame is encoded
 * once, and every send writes a fresh 12-byte prefix (length, key, version, correlation id)
 * and the shared rest of the frame, so a load generator costs next to nothing per request.
 */
import { createConnection, type Socket } from 'node:net';
import {
  ErrorCode,
  FrameDecoder,
  concatFrame,
  decodeResponse,
  encodeRequest,
  type RequestBodyByKey,
  type ResponseBodyByKey,
} from '../../wire/index.js';

/** Options for {@link WireClient.connect}. */
export interface WireClientOptions {
  /** The client id of every request header (default `strata-harness`). */
  clientId?: string;
  /** How long to wait for the TCP connection (default 10 s). */
  connectTimeoutMs?: number;
  /** The largest response frame accepted (default the codec's frame limit). */
  maxFrameBytes?: number;
  /** Disable Nagle's algorithm (default false): load generators want each request out at once. */
  noDelay?: boolean;
}

/** A request encoded once and sent many times with {@link WireClient.sendPrepared}. */
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

/** Encodes `body` once for {@link WireClient.sendPrepared}, with `clientId` in its header. */
export function prepareRequest<K extends keyof RequestBodyByKey>(
  apiKey: K,
  version: number,
  body: RequestBodyByKey[K],
  payloadBytes = 0,
  records = 0,
  clientId = 'strata-bench',
): PreparedRequest {
  const frame = concatFrame(encodeRequest({ apiKey, apiVersion: version, correlationId: 0, clientId }, body));
  return { prefix: Buffer.from(frame.subarray(0, 12)), rest: frame.subarray(12), payloadBytes, records };
}

/** Receives a response frame (without its length prefix) or the error that ended the wait. */
export type ResponseCallback = (frame: Buffer | Error) => void;

interface Waiter {
  correlationId: number;
  done: ResponseCallback;
}

/** One TCP connection to a broker with any number of requests in flight. */
export class WireClient {
  readonly clientId: string;
  readonly #socket: Socket;
  readonly #decoder: FrameDecoder;
  /** Requests awaiting an answer, oldest at #head; the slots before it are spent. */
  readonly #waiting: Waiter[] = [];
  #head = 0;
  #nextCorrelation = 1;
  #failure: Error | null = null;

  private constructor(socket: Socket, options: WireClientOptions) {
    this.#socket = socket;
    this.clientId = options.clientId ?? 'strata-harness';
    this.#decoder = new FrameDecoder(options.maxFrameBytes);
    if (options.noDelay) socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = this.#decoder.push(chunk);
      } catch (err) {
        this.#fail(err as Error);
        socket.destroy();
        return;
      }
      for (const frame of frames) this.#answer(frame);
    });
    socket.on('error', (err) => this.#fail(err));
    socket.on('close', () => this.#fail(new Error('connection closed by the broker')));
  }

  /**
   * Connects to `address` (`host:port`). `options` may be just the client id. Rejects after
   * the connect timeout or with the socket's error as `cause`.
   */
  static connect(address: string, options: WireClientOptions | string = {}): Promise<WireClient> {
    const opts = typeof options === 'string' ? { clientId: options } : options;
    const timeoutMs = opts.connectTimeoutMs ?? 10_000;
    const at = address.lastIndexOf(':');
    const host = address.slice(0, at);
    const port = Number(address.slice(at + 1));
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`could not connect to ${address} within ${timeoutMs} ms`));
      }, timeoutMs);
      const refused = (err: Error): void => {
        clearTimeout(timer);
        reject(new Error(`could not connect to ${address}: ${err.message}`, { cause: err }));
      };
      socket.once('error', refused);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', refused);
        resolve(new WireClient(socket, opts));
      });
    });
  }

  /** True once the connection closed (either side) or failed. */
  get closed(): boolean {
    return this.#failure !== null;
  }

  /** Requests sent and not yet answered. */
  get inflight(): number {
    return this.#waiting.length - this.#head;
  }

  /** Resolves when the connection closes (within `timeoutMs`), else rejects. */
  waitClosed(timeoutMs = 5000): Promise<void> {
    if (this.#failure !== null) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('connection still open')), timeoutMs);
      this.#socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Sends one request and resolves with its decoded response body. */
  async send<K extends keyof RequestBodyByKey & keyof ResponseBodyByKey>(apiKey: K, version: number, body: RequestBodyByKey[K]): Promise<ResponseBodyByKey[K]> {
    const frame = await this.sendRaw(apiKey, version, body);
    return decodeResponse(frame, apiKey, version).body;
  }

  /** Sends one request and resolves with the raw response frame (from the correlation id on). */
  sendRaw<K extends keyof RequestBodyByKey>(apiKey: K, version: number, body: RequestBodyByKey[K]): Promise<Buffer> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    const correlationId = this.#nextCorrelation++;
    const chunks = encodeRequest({ apiKey, apiVersion: version, correlationId, clientId: this.clientId }, body);
    return new Promise<Buffer>((resolve, reject) => {
      this.#waiting.push({ correlationId, done: (frame) => (frame instanceof Error ? reject(frame) : resolve(frame)) });
      this.#socket.cork();
      for (const c of chunks) this.#socket.write(c);
      this.#socket.uncork();
    });
  }

  /** Sends a request that gets no answer (a produce with acks=0). */
  sendNoReply<K extends keyof RequestBodyByKey>(apiKey: K, version: number, body: RequestBodyByKey[K]): void {
    const correlationId = this.#nextCorrelation++;
    this.#socket.write(concatFrame(encodeRequest({ apiKey, apiVersion: version, correlationId, clientId: this.clientId }, body)));
  }

  /** Sends a pre-encoded request; `done` gets the response frame (from the correlation id on) or an error. */
  sendPrepared(req: PreparedRequest, done: ResponseCallback): void {
    if (this.#failure !== null) {
      done(this.#failure);
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

  /**
   * Writes raw bytes (malformed or hand-built frames). Answers to correlation ids this client
   * did not hand out are dropped, so hand-built frames should use ids far from 1, 2, 3….
   */
  writeBytes(bytes: Buffer): void {
    this.#socket.write(bytes);
  }

  /** Closes the connection; requests still waiting fail. */
  close(): void {
    this.#fail(new Error('connection closed by this client'));
    this.#socket.destroy();
  }

  /** Hands a response frame to the oldest waiting request. */
  #answer(frame: Buffer): void {
    const id = frame.readInt32BE(0);
    const head = this.#waiting[this.#head];
    if (head === undefined || head.correlationId !== id) {
      // An answer nobody waits for answers bytes sent with writeBytes; drop it. One for a
      // later request means the broker answered out of order, which Kafka never does.
      if (!this.#isWaiting(id)) return;
    }
    this.#waiting[this.#head++] = undefined as never;
    if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
      this.#waiting.splice(0, this.#head);
      this.#head = 0;
    }
    head!.done(head!.correlationId === id ? frame : new Error(`response correlation id ${id}, expected ${head!.correlationId}`));
  }

  #isWaiting(correlationId: number): boolean {
    for (let i = this.#head; i < this.#waiting.length; i++) if (this.#waiting[i]!.correlationId === correlationId) return true;
    return false;
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    const waiting = this.#waiting.slice(this.#head);
    this.#waiting.length = 0;
    this.#head = 0;
    for (const w of waiting) w.done(this.#failure);
  }
}

/**
 * Creates a topic (CreateTopics v7) and returns its topic id; throws with the broker's error
 * and message unless it was created. `target` is a connected client, or an address to which
 * a connection is opened for the call.
 */
export async function createTopic(target: WireClient | string, name: string, partitions = 1, configs: Record<string, string> = {}): Promise<string> {
  const client = typeof target === 'string' ? await WireClient.connect(target, 'strata-admin') : target;
  try {
    const res = await client.send(19, 7, {
      topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: Object.entries(configs).map(([n, value]) => ({ name: n, value })) }],
      timeoutMs: 10_000,
      validateOnly: false,
    });
    const t = res.topics[0]!;
    if (t.errorCode !== ErrorCode.NONE) throw new Error(`creating topic ${name} failed with error ${t.errorCode}: ${t.errorMessage ?? ''}`);
    return t.topicId;
  } finally {
    if (typeof target === 'string') client.close();
  }
}
