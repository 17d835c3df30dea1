/**
 * A minimal Kafka client over Strata's own codec, for the CLI's admin commands: one
 * connection, requests answered by correlation id, no retries (callers report errors).
 */
import { createConnection, type Socket } from 'node:net';
import {
  FrameDecoder,
  concatFrame,
  decodeResponse,
  encodeRequest,
  type RequestBodyByKey,
  type ResponseBodyByKey,
} from '../../wire/index.js';

export class WireClient {
  readonly #socket: Socket;
  readonly #decoder = new FrameDecoder();
  readonly #waiting = new Map<number, { resolve(frame: Buffer): void; reject(err: Error): void }>();
  #next = 1;
  #failure: Error | null = null;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = this.#decoder.push(chunk);
      } catch (err) {
        this.#fail(err as Error);
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        const w = this.#waiting.get(frame.readInt32BE(0));
        if (!w) continue;
        this.#waiting.delete(frame.readInt32BE(0));
        w.resolve(frame);
      }
    });
    socket.on('error', (err) => this.#fail(err));
    socket.on('close', () => this.#fail(new Error('connection closed by the broker')));
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    for (const w of this.#waiting.values()) w.reject(err);
    this.#waiting.clear();
  }

  /** Connects to `host:port`; rejects after `timeoutMs`. */
  static connect(address: string, timeoutMs = 10000): Promise<WireClient> {
    const at = address.lastIndexOf(':');
    const host = address.slice(0, at);
    const port = Number(address.slice(at + 1));
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`could not connect to ${address} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', reject);
        resolve(new WireClient(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`could not connect to ${address}: ${err.message}`));
      });
    });
  }

  /** Sends one request and resolves with its decoded response body. */
  async send<K extends keyof RequestBodyByKey & keyof ResponseBodyByKey>(apiKey: K, version: number, body: RequestBodyByKey[K]): Promise<ResponseBodyByKey[K]> {
    if (this.#failure) throw this.#failure;
    const correlationId = this.#next++;
    const frame = await new Promise<Buffer>((resolve, reject) => {
      this.#waiting.set(correlationId, { resolve, reject });
      this.#socket.write(concatFrame(encodeRequest({ apiKey, apiVersion: version, correlationId, clientId: 'strata-cli' }, body)));
    });
    return decodeResponse(frame, apiKey, version).body;
  }

  close(): void {
    this.#socket.destroy();
  }
}
