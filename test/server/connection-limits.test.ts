/**
 * Connection limits (issue 14, scope 3): `--max-connections-per-ip` and `--max-connections`.
 * A connection over either limit is closed by the broker as it arrives; one closing makes room
 * for the next. Different client addresses come from 127.0.0.x local addresses (Linux routes
 * all of 127/8 to the loopback interface).
 */
import { createConnection, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionLimits } from '../../src/server/connection-limits.js';
import { ApiKey, FrameDecoder, concatFrame, decodeResponse, encodeRequest, ErrorCode } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const PER_IP = 3;
const MAX = 4;

/** A client connection from a chosen local address that can ask ApiVersions. */
class Client {
  readonly #socket: Socket;
  readonly #decoder = new FrameDecoder();
  readonly #frames: Buffer[] = [];
  #closed = false;
  #wake: (() => void) | null = null;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#frames.push(...this.#decoder.push(chunk));
      this.#wake?.();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
  }

  static connect(port: number, localAddress: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host: '127.0.0.1', port, localAddress }, () => {
        socket.off('error', reject);
        resolve(new Client(socket));
      });
      socket.once('error', reject);
    });
  }

  /**
   * Sends ApiVersions and resolves 'served' with the answer's error code checked, or
   * 'closed' when the broker closes the connection instead of answering.
   */
  async apiVersions(): Promise<'served' | 'closed'> {
    const frame = concatFrame(encodeRequest({ apiKey: ApiKey.ApiVersions, apiVersion: 3, correlationId: 7, clientId: 'limits' }, { clientSoftwareName: 'limits-test', clientSoftwareVersion: '1' }));
    this.#socket.write(frame);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const f = this.#frames.shift();
      if (f) {
        const res = decodeResponse(f, ApiKey.ApiVersions, 3);
        expect([res.correlationId, res.body.errorCode]).toEqual([7, ErrorCode.NONE]);
        return 'served';
      }
      if (this.#closed) return 'closed';
      if (Date.now() > deadline) throw new Error('neither an answer nor a close within 10 s');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        this.#wake = () => {
          clearTimeout(t);
          this.#wake = null;
          resolve();
        };
      });
    }
  }

  close(): void {
    this.#socket.destroy();
  }
}

let cluster: Cluster;
let port: number;
const clients: Client[] = [];

async function connect(localAddress: string): Promise<Client> {
  const c = await Client.connect(port, localAddress);
  clients.push(c);
  return c;
}

function metric(name: string): number {
  const text = cluster.brokers[0]!.broker!.metricsText();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--max-connections-per-ip', String(PER_IP), '--max-connections', String(MAX)] });
  port = cluster.brokers[0]!.port;
});

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

describe('connection limits', () => {
  it('closes a connection over the per-address limit, and accepts another once one closes', async () => {
    const first = [await connect('127.0.0.1'), await connect('127.0.0.1'), await connect('127.0.0.1')];
    expect(await Promise.all(first.map((c) => c.apiVersions()))).toEqual(['served', 'served', 'served']);
    const fourth = await connect('127.0.0.1');
    expect(await fourth.apiVersions()).toBe('closed');
    expect(metric('strata_connections_refused_total')).toBe(1);
    // The same address still counts its three: the refused one took no slot.
    expect(metric('strata_connections')).toBe(3);

    first[0]!.close();
    await waitFor('the broker to count the closed connection', () => (metric('strata_connections') === 2 ? true : undefined));
    const replacement = await connect('127.0.0.1');
    expect(await replacement.apiVersions()).toBe('served');
    expect(await first[1]!.apiVersions()).toBe('served');
  });

  it('closes a connection over the broker-wide limit, from any address', async () => {
    // Three from 127.0.0.1 are open (from the test before); one more from elsewhere is the fourth.
    expect(metric('strata_connections')).toBe(3);
    const other = await connect('127.0.0.2');
    expect(await other.apiVersions()).toBe('served');
    const fifth = await connect('127.0.0.3');
    expect(await fifth.apiVersions()).toBe('closed');
    expect(metric('strata_connections_refused_total')).toBe(2);

    other.close();
    await waitFor('the broker to count the closed connection', () => (metric('strata_connections') === 3 ? true : undefined));
    const later = await connect('127.0.0.3');
    expect(await later.apiVersions()).toBe('served');
  });
});

describe('ConnectionLimits', () => {
  it('counts per address and in all, and gives slots back', () => {
    const limits = new ConnectionLimits(3, 2);
    expect([limits.tryOpen('a'), limits.tryOpen('a'), limits.tryOpen('a')]).toEqual([null, null, 'max.connections.per.ip']);
    expect([limits.tryOpen('b'), limits.tryOpen('c')]).toEqual([null, 'max.connections']);
    expect([limits.open, limits.refused]).toEqual([3, 2]);
    limits.closed('a');
    expect([limits.tryOpen('c'), limits.tryOpen('a')]).toEqual([null, 'max.connections']);
    limits.closed('b');
    expect(limits.tryOpen('a')).toBe(null);
    expect(limits.open).toBe(3);
  });

  it('logs one line per second at most, counting the refusals it did not log', () => {
    const lines: { fields: Record<string, unknown>; msg: string }[] = [];
    const log = { warn: (fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg }) } as never;
    const limits = new ConnectionLimits(10, 1);
    expect(limits.tryOpen('10.0.0.1')).toBe(null);
    for (let i = 0; i < 5; i++) {
      expect(limits.tryOpen('10.0.0.1')).toBe('max.connections.per.ip');
      limits.logRefusal(log, '10.0.0.1', 'max.connections.per.ip', 1_000 + i * 100);
    }
    limits.logRefusal(log, '10.0.0.1', 'max.connections.per.ip', 2_000);
    expect(lines.map((l) => [l.fields.limit, l.fields.max, l.fields.open, l.fields.alsoRefusedSinceLastLine])).toEqual([
      ['max.connections.per.ip', 1, 1, 0],
      ['max.connections.per.ip', 1, 1, 4],
    ]);
    expect(lines[0]!.msg).toMatch(/--max-connections-per-ip/);
  });
});
