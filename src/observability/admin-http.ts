/**
 * The admin HTTP listener: `/metrics` (Prometheus text), `/healthz` (the process runs),
 * `/readyz` (started, not draining, Redis connected: a load balancer may send clients) and the
 * JSON admin API under `/api/v1/` (read-only): `GET /api/v1/topics/<name>` describes a topic's
 * partitions and where their data is stored.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';

export interface AdminRoutes {
  metrics(): string;
  /** Started and not draining (the body of /readyz says `ready` then). */
  started(): boolean;
  /** Started, not draining and Redis connected (/readyz answers 200 only then). */
  ready(): boolean;
  /** A topic's partitions and storage, as JSON-ready data; null when there is no such topic. */
  topic(name: string): Promise<object | null>;
}

const TOPIC_PATH = '/api/v1/topics/';

export class AdminHttp {
  readonly #routes: AdminRoutes;
  #server: Server | null = null;

  constructor(routes: AdminRoutes) {
    this.#routes = routes;
  }

  async start(host: string, port: number): Promise<void> {
    const server = createServer((req, res) => {
      const send = (status: number, body: string): void => {
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(body + '\n');
      };
      if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(this.#routes.metrics());
      } else if (req.url === '/healthz') send(200, 'ok');
      else if (req.url === '/readyz') {
        send(this.#routes.ready() ? 200 : 503, this.#routes.started() ? 'ready' : 'not ready');
      } else if (req.url?.startsWith(TOPIC_PATH) && req.method === 'GET') void this.#topic(req.url.slice(TOPIC_PATH.length), res);
      else send(404, 'not found');
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  async #topic(encoded: string, res: ServerResponse): Promise<void> {
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body) + '\n');
    };
    let name: string;
    try {
      name = decodeURIComponent(encoded);
    } catch {
      json(400, { error: `"${encoded}" is not a URL-encoded topic name` });
      return;
    }
    try {
      const topic = await this.#routes.topic(name);
      if (topic === null) json(404, { error: `no topic "${name}"` });
      else json(200, topic);
    } catch (err) {
      json(503, { error: (err as Error).message });
    }
  }

  /** The bound port, or null before start. */
  get port(): number | null {
    const addr = this.#server?.address();
    return addr && typeof addr === 'object' ? addr.port : null;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}
