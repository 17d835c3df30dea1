/**
 * The admin HTTP listener: `/metrics` (Prometheus text), `/healthz` (the process runs) and
 * `/readyz` (started, not draining, Redis connected: a load balancer may send clients).
 */
import { createServer, type Server } from 'node:http';

export interface AdminRoutes {
  metrics(): string;
  /** Started and not draining (the body of /readyz says `ready` then). */
  started(): boolean;
  /** Started, not draining and Redis connected (/readyz answers 200 only then). */
  ready(): boolean;
}

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
      } else send(404, 'not found');
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

  /** The bound port, or null before start. */
  get port(): number | null {
    const addr = this.#server?.address();
    return addr && typeof addr === 'object' ? addr.port : null;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}
