/**
 * The lease-ownership loop both coordinators use (src/coordination/lease-owner.ts), against a
 * real redis-server: taking a lease and loading once, refusing while another broker holds it,
 * renewing, losing an entry whose lease moved on, and releasing everything on stop.
 */
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { txnKeys } from '../../src/coordination/keys.js';
import { LeaseClient } from '../../src/coordination/lease.js';
import { LeaseOwner, type Loaded, type LeaseOwnerOptions } from '../../src/coordination/lease-owner.js';
import { createCommandClient, waitReady } from '../../src/coordination/redis.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const LEASE_MS = 30_000;

interface Entry {
  readonly leaseValue: string;
  readonly id: string;
}

/** Log lines as objects (msg and fields). */
type Line = Record<string, unknown>;

let server: RedisServer;
let redis: Redis;
const clients: Redis[] = [];
let idSeq = 0;

async function client(): Promise<Redis> {
  const c = createCommandClient(server.url);
  await waitReady(c, 5000);
  clients.push(c);
  return c;
}

/** A transactional id no other test uses. */
function freshId(): string {
  return `lease-owner-${process.pid}-${idSeq++}`;
}

interface Harness {
  owner: LeaseOwner<Entry>;
  loads: string[];
  lost: Entry[];
  stopped: string[];
  lines: Line[];
}

/** A LeaseOwner for node `nodeId` over `on` (default: the shared client), recording its calls. */
function harness(nodeId: number | null, options: Partial<LeaseOwnerOptions<Entry>> & { on?: Redis; ttlMs?: number } = {}): Harness {
  const h: Harness = { owner: undefined as unknown as LeaseOwner<Entry>, loads: [], lost: [], stopped: [], lines: [] };
  const logger = pino({ level: 'debug' }, { write: (s: string) => void h.lines.push(JSON.parse(s) as Line) });
  h.owner = new LeaseOwner<Entry>({
    leases: new LeaseClient(options.on ?? redis, options.ttlMs ?? LEASE_MS),
    noun: 'transaction',
    idField: 'transactionalId',
    keys: txnKeys,
    isLive: () => true,
    load: async (id, leaseValue): Promise<Loaded<Entry>> => {
      h.loads.push(id);
      return { entry: { id, leaseValue } };
    },
    onLost: (_, entry) => void h.lost.push(entry),
    onStop: async (id) => void h.stopped.push(id),
    logger,
    ...options,
  });
  if (nodeId !== null) h.owner.start(nodeId);
  return h;
}

const messages = (lines: Line[]): unknown[] => lines.filter((l) => l.level === 40).map((l) => [l.msg, l.transactionalId, l.why ?? l.err]);

beforeAll(async () => {
  server = await startRedis({ appendOnly: false });
  redis = await client();
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await server?.stop();
});

describe('LeaseOwner: taking ownership', () => {
  it('takes the lease with the next token, loads once, and answers later callers from memory', async () => {
    const h = harness(1);
    const id = freshId();
    await redis.set(txnKeys(id).fence, '41');
    const entry = await h.owner.own(id);
    expect(entry).toEqual({ id, leaseValue: '1:42' });
    expect(await redis.get(txnKeys(id).lease)).toBe('1:42');
    expect(await h.owner.own(id)).toBe(entry);
    expect(h.loads).toEqual([id]);
    expect(h.owner.ids()).toEqual([id]);
    expect(h.owner.get(id)).toBe(entry);
    await h.owner.stop();
  });

  it('concurrent callers share one load', async () => {
    const h = harness(1);
    const id = freshId();
    const [a, b, c] = await Promise.all([h.owner.own(id), h.owner.own(id), h.owner.own(id)]);
    expect(a).toBe(b);
    expect(b).toBe(c);
    expect(h.loads).toEqual([id]);
    await h.owner.stop();
  });

  it('a lease held by a live broker is NOT_COORDINATOR; by a dead one, COORDINATOR_LOAD_IN_PROGRESS', async () => {
    const holder = harness(1);
    const id = freshId();
    await holder.owner.own(id);
    const live = harness(2, { isLive: (nodeId) => nodeId === 1 });
    const dead = harness(2, { isLive: () => false });
    expect(await live.owner.own(id)).toBe(ErrorCode.NOT_COORDINATOR);
    expect(await dead.owner.own(id)).toBe(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS);
    expect([...live.loads, ...dead.loads]).toEqual([]);
    expect(await redis.get(txnKeys(id).lease)).toBe((holder.owner.get(id) as Entry).leaseValue);
    await Promise.all([holder.owner.stop(), live.owner.stop(), dead.owner.stop()]);
  });

  it('a check that refuses answers its code before any lease is taken', async () => {
    const h = harness(1);
    const id = freshId();
    expect(await h.owner.own(id, async () => ErrorCode.GROUP_ID_NOT_FOUND)).toBe(ErrorCode.GROUP_ID_NOT_FOUND);
    expect(await redis.exists(txnKeys(id).lease)).toBe(0);
    expect(await h.owner.own(id, async () => ErrorCode.NONE)).toEqual({ id, leaseValue: expect.stringMatching(/^1:\d+$/) as unknown });
    await h.owner.stop();
  });

  it('a load that fails answers COORDINATOR_NOT_AVAILABLE and owns nothing', async () => {
    const h = harness(1, {
      load: async () => {
        throw new Error('state unreadable');
      },
    });
    const id = freshId();
    expect(await h.owner.own(id)).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    expect(h.owner.ids()).toEqual([]);
    expect(messages(h.lines)).toEqual([['could not load transaction state', id, 'state unreadable']]);
    await h.owner.stop();
  });

  it('afterOwned runs with the entry already owned; if it fails the caller is told, the entry stays owned', async () => {
    const seen: (Entry | undefined)[] = [];
    const h: Harness = harness(1, {
      load: async (id, leaseValue) => ({
        entry: { id, leaseValue },
        afterOwned: async () => {
          seen.push(h.owner.get(id));
          throw new Error('finish failed');
        },
      }),
    });
    const id = freshId();
    expect(await h.owner.own(id)).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    expect(seen).toEqual([{ id, leaseValue: expect.stringMatching(/^1:\d+$/) as unknown }]);
    expect(h.owner.get(id)).toBe(seen[0]);
    await h.owner.stop();
  });

  it('before start nothing can be owned', async () => {
    const h = harness(null);
    const id = freshId();
    expect(await h.owner.own(id)).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE);
    expect(await redis.exists(txnKeys(id).lease)).toBe(0);
  });
});

describe('LeaseOwner: keeping and losing ownership', () => {
  it('renewAll extends every owned lease to its full length', async () => {
    const h = harness(1);
    const [a, b] = [freshId(), freshId()];
    await h.owner.own(a);
    await h.owner.own(b);
    await redis.pexpire(txnKeys(a).lease, 5);
    await redis.pexpire(txnKeys(b).lease, 999_999);
    await h.owner.renewAll();
    for (const id of [a, b]) {
      const ttl = await redis.pttl(txnKeys(id).lease);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(LEASE_MS);
    }
    expect(h.owner.ids()).toEqual([a, b]);
    await h.owner.stop();
  });

  it('the timer renews every third of the lease length', async () => {
    const h = harness(1, { ttlMs: 600 });
    const id = freshId();
    await h.owner.own(id);
    await redis.pexpire(txnKeys(id).lease, 999_999);
    // Polls until a renewal has set the lease back to its own length (no timing asserted).
    await waitFor('the lease to be renewed', async () => ((await redis.pttl(txnKeys(id).lease)) <= 600 ? true : undefined), 20_000);
    await h.owner.stop();
  });

  it.each([
    ['taken by another broker', (id: string) => redis.set(txnKeys(id).lease, '9:999')],
    ['expired', (id: string) => redis.del(txnKeys(id).lease)],
  ])('a lease %s loses its entry at the next renewal', async (_, change) => {
    const h = harness(1);
    const id = freshId();
    const entry = (await h.owner.own(id)) as Entry;
    await change(id);
    await h.owner.renewAll();
    expect(h.owner.get(id)).toBeUndefined();
    expect(h.lost).toEqual([entry]);
    expect(messages(h.lines)).toEqual([['lost transaction ownership', id, 'lease taken over']]);
    // Owning it again takes a new lease (when free) and loads again.
    await redis.del(txnKeys(id).lease);
    expect(await h.owner.own(id)).not.toBe(entry);
    expect(h.loads).toEqual([id, id]);
    await h.owner.stop();
  });

  it('while Redis does not answer, entries are kept', async () => {
    const on = await client();
    const h = harness(1, { on });
    const id = freshId();
    const entry = await h.owner.own(id);
    on.disconnect();
    await h.owner.renewAll();
    expect(h.owner.get(id)).toBe(entry);
    expect(h.lost).toEqual([]);
    expect(messages(h.lines).map((m) => (m as unknown[]).slice(0, 2))).toEqual([['could not renew a transaction lease', id]]);
    await h.owner.stop();
    expect(messages(h.lines).map((m) => (m as unknown[]).slice(0, 2))[1]).toEqual(['could not release a transaction lease; it expires by itself', id]);
  });

  it('lose drops the entry once, and ignores an entry that is no longer the owned one', async () => {
    const h = harness(1);
    const id = freshId();
    const entry = (await h.owner.own(id)) as Entry;
    h.owner.lose(id, { ...entry }, 'stale');
    expect(h.owner.get(id)).toBe(entry);
    h.owner.lose(id, entry, 'state write fenced');
    h.owner.lose(id, entry, 'state write fenced');
    expect(h.owner.get(id)).toBeUndefined();
    expect(h.lost).toEqual([entry]);
    expect(messages(h.lines)).toEqual([['lost transaction ownership', id, 'state write fenced']]);
  });
});

describe('LeaseOwner: giving ownership up', () => {
  it('stop settles each entry while its lease is still held, then releases the lease', async () => {
    const leasesAtSettle: (string | null)[] = [];
    const h = harness(1, {
      onStop: async (id) => void leasesAtSettle.push(await redis.get(txnKeys(id).lease)),
    });
    const [a, b] = [freshId(), freshId()];
    const ea = (await h.owner.own(a)) as Entry;
    const eb = (await h.owner.own(b)) as Entry;
    await h.owner.stop();
    expect(leasesAtSettle).toEqual([ea.leaseValue, eb.leaseValue]);
    expect(await redis.exists(txnKeys(a).lease, txnKeys(b).lease)).toBe(0);
    expect(h.owner.ids()).toEqual([]);
    expect(h.lost).toEqual([]);
  });

  it('stop does not release a lease another broker holds now', async () => {
    const h = harness(1);
    const id = freshId();
    await h.owner.own(id);
    await redis.set(txnKeys(id).lease, '9:999');
    await h.owner.stop();
    expect(await redis.get(txnKeys(id).lease)).toBe('9:999');
  });

  it('release drops the entry and its lease', async () => {
    const h = harness(1);
    const id = freshId();
    const entry = (await h.owner.own(id)) as Entry;
    await h.owner.release(id, entry);
    expect(h.owner.get(id)).toBeUndefined();
    expect(await redis.exists(txnKeys(id).lease)).toBe(0);
    expect(h.lost).toEqual([]);
    await h.owner.stop();
    expect(h.stopped).toEqual([]);
  });
});
