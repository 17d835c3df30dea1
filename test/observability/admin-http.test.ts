/** The admin HTTP listener: what each path answers, over a real HTTP connection. */
import { afterEach, describe, expect, it } from 'vitest';
import { AdminHttp, type AdminRoutes } from '../../src/observability/admin-http.js';

let http: AdminHttp | null = null;

afterEach(async () => {
  await http?.stop();
  http = null;
});

async function serve(routes: Omit<AdminRoutes, 'topic'> & Partial<Pick<AdminRoutes, 'topic'>>): Promise<number> {
  http = new AdminHttp({ topic: () => Promise.resolve(null), ...routes });
  await http.start('127.0.0.1', 0);
  return http.port!;
}

async function get(port: number, path: string): Promise<[number, string, string | null]> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return [res.status, await res.text(), res.headers.get('content-type')];
}

describe('admin HTTP', () => {
  it('answers /healthz, /metrics and unknown paths', async () => {
    const port = await serve({ metrics: () => '# TYPE x counter\nx 1\n', started: () => true, ready: () => true });
    expect(await get(port, '/healthz')).toEqual([200, 'ok\n', 'text/plain']);
    expect(await get(port, '/metrics')).toEqual([200, '# TYPE x counter\nx 1\n', 'text/plain; version=0.0.4']);
    expect(await get(port, '/nope')).toEqual([404, 'not found\n', 'text/plain']);
  });

  it('answers /readyz 200 only when ready, and says whether the broker has started', async () => {
    const state = { started: false, ready: false };
    const port = await serve({ metrics: () => '', started: () => state.started, ready: () => state.ready });
    expect(await get(port, '/readyz')).toEqual([503, 'not ready\n', 'text/plain']);
    // Started but Redis not connected: not ready for clients, though the broker runs.
    state.started = true;
    expect(await get(port, '/readyz')).toEqual([503, 'ready\n', 'text/plain']);
    state.ready = true;
    expect(await get(port, '/readyz')).toEqual([200, 'ready\n', 'text/plain']);
  });

  it('has no port before start', () => {
    expect(new AdminHttp({ metrics: () => '', started: () => false, ready: () => false, topic: () => Promise.resolve(null) }).port).toBeNull();
  });

  it('serves GET /api/v1/topics/<name> as JSON: 200, 404 for no topic, 400 for a bad name, 503 on failure', async () => {
    const asked: string[] = [];
    const port = await serve({
      metrics: () => '',
      started: () => true,
      ready: () => true,
      topic: (name) => {
        asked.push(name);
        if (name === 'broken') return Promise.reject(new Error('Redis is unreachable'));
        return Promise.resolve(name === 'a b' ? { name, partitions: [] } : null);
      },
    });
    expect(await get(port, '/api/v1/topics/a%20b')).toEqual([200, '{"name":"a b","partitions":[]}\n', 'application/json']);
    expect(await get(port, '/api/v1/topics/none')).toEqual([404, '{"error":"no topic \\"none\\""}\n', 'application/json']);
    expect(await get(port, '/api/v1/topics/%E0%A4%A')).toEqual([400, '{"error":"\\"%E0%A4%A\\" is not a URL-encoded topic name"}\n', 'application/json']);
    expect(await get(port, '/api/v1/topics/broken')).toEqual([503, '{"error":"Redis is unreachable"}\n', 'application/json']);
    expect(asked).toEqual(['a b', 'none', 'broken']);
  });
});
