/**
 * Issue 14's request-memory finding at its real size, with the broker's default limits
 * (256 MiB budget, 100 MiB frames): ten connections each send 99 MiB of a 100 MiB frame and
 * stop. The broker must hold at most its budget (here one such frame: large frames share half
 * of it), pause the other nine with their bytes left in the kernel, serve an honest producer
 * meanwhile, and return everything when they close. `request-budget.test.ts` covers the rules
 * in detail at a small scale; `npm run bench:request-memory` measures the RSS of this case.
 */
import { createConnection, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequestBudget } from '../../src/server/request-budget.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { readAll } from '../helpers/read-all.js';
import { createTopic, produceOk } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

const MiB = 1024 * 1024;
const FRAME = 100 * MiB;
const SENT = 99 * MiB;
/** One shared 1 MiB piece, written again and again, so the test itself holds little memory. */
const PIECE = Buffer.alloc(MiB, 0x5a);

/**
 * A connection that declares a 100 MiB frame and writes up to 99 MiB of it, one piece at a
 * time as the socket drains, then stops. On a paused connection the writes stall once the
 * kernel's buffers are full, which is the point.
 */
class Staller {
  readonly #socket: Socket;
  #sent = 0;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('error', () => undefined);
    socket.on('drain', () => this.#pump());
  }

  static async start(port: number): Promise<Staller> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection({ host: '127.0.0.1', port }, () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', reject);
    });
    const staller = new Staller(socket);
    const prefix = Buffer.alloc(4);
    prefix.writeInt32BE(FRAME, 0);
    socket.write(prefix);
    staller.#pump();
    return staller;
  }

  /** Bytes of the frame body handed to the socket so far. */
  get sent(): number {
    return this.#sent;
  }

  #pump(): void {
    while (this.#sent < SENT) {
      const n = Math.min(PIECE.length, SENT - this.#sent);
      this.#sent += n;
      if (!this.#socket.write(n === PIECE.length ? PIECE : PIECE.subarray(0, n))) return;
    }
  }

  close(): void {
    this.#socket.destroy();
  }
}

let cluster: Cluster;
let budget: RequestBudget;

beforeAll(async () => {
  // The broker's defaults, spelled out so the test states what it relies on.
  cluster = await startCluster({ brokerArgs: ['--queued-max-request-bytes', String(256 * MiB), '--socket-request-max-bytes', String(FRAME)] });
  budget = cluster.brokers[0]!.broker!.requestBudget;
});

afterAll(async () => {
  await cluster?.stop();
});

describe('ten connections holding 99 MiB of 100 MiB frames, at the default limits', () => {
  it('keep the broker within its budget while an honest producer is served, and give everything back at close', async () => {
    const admin = await RawClient.connect(cluster.bootstrap, 'honest-producer');
    const stallers: Staller[] = [];
    try {
      await createTopic(admin, 'honest');
      for (let i = 0; i < 10; i++) stallers.push(await Staller.start(cluster.brokers[0]!.port));
      // Large frames share half of the 256 MiB: one 100 MiB frame is held, nine wait paused.
      await waitFor('one frame held and nine waiting', () => (budget.inUse === FRAME && budget.waiting === 9 ? true : undefined));
      // The held one is received whole but for its missing last MiB; the paused ones could
      // only hand the kernel what its buffers take, far from 99 MiB.
      await waitFor('the admitted frame to have sent its 99 MiB', () => (stallers.some((s) => s.sent === SENT) ? true : undefined));
      expect(stallers.filter((s) => s.sent === SENT)).toHaveLength(1);

      const sent: string[] = [];
      for (let i = 0; i < 10; i++) {
        const values = [`honest-${i}`];
        expect(await produceOk(admin, 'honest', 0, values)).toBe(BigInt(i));
        sent.push(...values);
      }
      expect((await readAll(cluster.bootstrap, 'honest')).map((r) => [r.offset, r.value])).toEqual(sent.map((v, i) => [i, v]));

      expect([budget.inUse, budget.waiting]).toEqual([FRAME, 9]);
      expect(budget.peakInUse).toBeLessThanOrEqual(256 * MiB);
    } finally {
      for (const s of stallers) s.close();
      admin.close();
    }
    await waitFor('the request budget to return to zero', () => (budget.inUse === 0 && budget.waiting === 0 ? true : undefined));
  });
});
