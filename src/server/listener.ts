/**
 * The Kafka listener: accepts TCP connections within the connection limits and gives each a
 * {@link Connection}. It knows the connections it opened, so that shutdown can stop their
 * reading, wait for their in-flight requests and close them.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../observability/logger.js';
import { Connection, type ConnectionDeps } from './connection.js';
import { ConnectionLimits } from './connection-limits.js';

export interface ListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
}

export class KafkaListener {
  readonly #opts: ListenerOptions;
  readonly #deps: ConnectionDeps;
  readonly #log: Logger;
  readonly #limits: ConnectionLimits;
  readonly #connections = new Set<Connection>();
  #server: Server | null = null;
  #accepting = true;

  constructor(opts: ListenerOptions, deps: ConnectionDeps) {
    this.#opts = opts;
    this.#deps = deps;
    this.#log = deps.log;
    this.#limits = new ConnectionLimits(opts.maxConnections, opts.maxConnectionsPerIp);
  }

  /** Binds the port; resolves once listening. */
  async start(): Promise<void> {
    const server = createServer((socket) => this.#accept(socket));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#opts.port, this.#opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    const addr = this.#server?.address();
    return addr && typeof addr === 'object' ? addr.port : this.#opts.port;
  }

  /** Connections open now. */
  get connections(): number {
    return this.#connections.size;
  }

  /** Connections refused by the limits since start. */
  get refused(): number {
    return this.#limits.refused;
  }

  /** Requests received and not yet answered, over every connection. */
  get inflight(): number {
    let n = 0;
    for (const c of this.#connections) n += c.inflight;
    return n;
  }

  #accept(socket: Socket): void {
    if (!this.#accepting) {
      socket.destroy();
      return;
    }
    const ip = socket.remoteAddress;
    if (ip === undefined) {
      // No address: the peer has already gone.
      socket.destroy();
      return;
    }
    const refusal = this.#limits.tryOpen(ip);
    if (refusal !== null) {
      this.#limits.logRefusal(this.#log, ip, refusal);
      socket.destroy();
      return;
    }
    const conn = new Connection(socket, this.#deps, (c) => {
      this.#connections.delete(c);
      this.#limits.closed(ip);
    });
    this.#connections.add(conn);
  }

  /**
   * The first step of shutdown: refuse new connections, stop reading requests on open ones.
   * Resolves once the server has closed, which is after {@link closeConnections}.
   */
  stopAccepting(): Promise<void> {
    this.#accepting = false;
    const closed = new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    for (const c of this.#connections) c.stopReading();
    return closed;
  }

  /** Closes every connection (requests still in flight on them are dropped). */
  closeConnections(reason: string): void {
    for (const c of [...this.#connections]) c.close(reason);
  }
}
