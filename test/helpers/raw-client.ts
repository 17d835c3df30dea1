/**
 * Test helper: a minimal Kafka client over the project's own codec, for tests that need
 * exact control of what is sent (duplicate produce, bad frames) or exact views of responses.
 */
import { Socket, createConnection } from 'node:net';
import {
  FrameDecoder,
  concatFrame,
  decodeResponse,
  encodeRequest,
  type RequestBodyByKey,
  type ResponseBodyByKey,
} from '../../wire/index.js';

export class RawClient {
  readonly #socket: Socket;
  readonly #decoder = new FrameDecoder();
  #nextCorrelation = 1;
  readonly #waiting = new Map<number, { apiKey: number; version: number; resolve(frame: Buffer): void; reject(err: Error): void }>();
  #closed: Error | null = null;
  readonly clientId: string;

  private constructor(socket: Socket, clientId: string) {
    this.#socket = socket;
    this.clientId = clientId;
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.#decoder.push(chunk)) {
        const correlationId = frame.readInt32BE(0);
        const w = this.#waiting.get(correlationId);
        if (!w) continue;
        this.#waiting.delete(correlationId);
        w.resolve(frame);
      }
    });
    const fail = (err: Error): void => {
      this.#closed = err;
      for (const w of this.#waiting.values()) w.reject(err);
      this.#waiting.clear();
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }

  static connect(address: string, clientId = 'raw-test-client'): Promise<RawClient> {
    const [host, port] = address.split(':');
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host: host!, port: Number(port) }, () => {
        socket.off('error', reject);
        resolve(new RawClient(socket, clientId));
      });
      socket.once('error', reject);
    });
  }

  /** True once the broker closed the connection (or it failed). */
  get closed(): boolean {
    return this.#closed !== null;
  }

  /** Resolves when the connection closes (within `timeoutMs`), else rejects. */
  waitClosed(timeoutMs = 5000): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('connection still open')), timeoutMs);
      this.#socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Sends a request and resolves with the decoded response body. */
  async send<K extends keyof RequestBodyByKey & keyof ResponseBodyByKey>(apiKey: K, version: number, body: RequestBodyByKey[K]): Promise<ResponseBodyByKey[K]> {
    const frame = await this.sendRaw(apiKey, version, body);
    return decodeResponse(frame, apiKey, version).body;
  }

  /** Sends a request and resolves with the raw response frame. */
  sendRaw<K extends keyof RequestBodyByKey>(apiKey: K, version: number, body: RequestBodyByKey[K]): Promise<Buffer> {
    if (this.#closed) return Promise.reject(this.#closed);
    const correlationId = this.#nextCorrelation++;
    const frame = concatFrame(encodeRequest({ apiKey, apiVersion: version, correlationId, clientId: this.clientId }, body));
    return new Promise<Buffer>((resolve, reject) => {
      this.#waiting.set(correlationId, { apiKey, version, resolve, reject });
      this.#socket.write(frame);
    });
  }

  /** Sends a request expecting no answer (acks=0 produce). */
  sendNoReply<K extends keyof RequestBodyByKey>(apiKey: K, version: number, body: RequestBodyByKey[K]): void {
    const correlationId = this.#nextCorrelation++;
    this.#socket.write(concatFrame(encodeRequest({ apiKey, apiVersion: version, correlationId, clientId: this.clientId }, body)));
  }

  /** Writes raw bytes (bad-input tests). */
  writeBytes(bytes: Buffer): void {
    this.#socket.write(bytes);
  }

  close(): void {
    this.#socket.destroy();
  }
}
