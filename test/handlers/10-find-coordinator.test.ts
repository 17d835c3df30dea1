import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode, type FindCoordinatorResponse } from '../../wire/index.js';
import { GROUP_BROKER_ARGS, joinGroup } from '../helpers/raw-group.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { waitFor } from '../helpers/wait.js';

let cluster: Cluster;
let c0: RawClient;
let c1: RawClient;
/** nodeId → port of the two brokers. */
const ports = new Map<number, number>();

beforeAll(async () => {
  cluster = await startCluster({ brokers: 2, brokerArgs: GROUP_BROKER_ARGS });
  for (const b of cluster.brokers) ports.set(b.nodeIdHint, b.port);
  c0 = await RawClient.connect(`127.0.0.1:${cluster.brokers[0]!.port}`, 'find-coordinator-test');
  c1 = await RawClient.connect(`127.0.0.1:${cluster.brokers[1]!.port}`, 'find-coordinator-test');
  // Each broker learns of the other from the registry within a heartbeat; until then their
  // rendezvous choices differ.
  const keys = Array.from({ length: 20 }, (_, i) => `fc-warmup-${i}`);
  const views = async (): Promise<string[]> => Promise.all([c0, c1].map(async (c) => (await c.send(ApiKey.FindCoordinator, 4, { key: '', keyType: 0, coordinatorKeys: keys })).coordinators.map((k) => k.nodeId).join()));
  const agreed = await waitFor('both brokers to agree on the coordinators', views, ([a, b]) => a === b && new Set(a!.split(',')).size === 2, 10_000);
  expect(agreed[0]).toBe(agreed[1]);
});

afterAll(async () => {
  c0?.close();
  c1?.close();
  await cluster?.stop();
});

function find(c: RawClient, version: number, key: string, keyType = 0): Promise<FindCoordinatorResponse> {
  return c.send(ApiKey.FindCoordinator, version, { key: version < 4 ? key : '', keyType, coordinatorKeys: version >= 4 ? [key] : [] });
}

/** The coordinator node of a group as v3 names it. */
async function coordinatorOf(c: RawClient, key: string, keyType = 0): Promise<number> {
  const r = await find(c, 3, key, keyType);
  expect(r.errorCode).toBe(ErrorCode.NONE);
  return r.nodeId;
}

describe('FindCoordinator', () => {
  it('v0–v3 name one live broker, its host and port, the same from every broker', async () => {
    for (const v of [0, 1, 2, 3]) {
      const r = await find(c0, v, 'fc-group');
      expect(r.errorCode).toBe(ErrorCode.NONE);
      expect(ports.has(r.nodeId)).toBe(true);
      expect(r).toMatchObject({ throttleTimeMs: 0, host: '127.0.0.1', port: ports.get(r.nodeId), coordinators: [] });
      // v1 adds the error message.
      if (v >= 1) expect(r.errorMessage).toBe(null);
      expect((await find(c1, v, 'fc-group')).nodeId).toBe(r.nodeId);
    }
  });

  it('spreads groups over the brokers (rendezvous choice)', async () => {
    const nodes = new Set<number>();
    for (let i = 0; i < 40; i++) nodes.add(await coordinatorOf(c0, `fc-spread-${i}`));
    expect([...nodes].sort()).toEqual([...ports.keys()].sort());
  });

  it('v4+ answer a batch of keys, one coordinator per key, in order', async () => {
    const keys = Array.from({ length: 6 }, (_, i) => `fc-batch-${i}`);
    const expected = await Promise.all(keys.map(async (key) => {
      const nodeId = await coordinatorOf(c0, key);
      return { key, nodeId, host: '127.0.0.1', port: ports.get(nodeId)!, errorCode: ErrorCode.NONE, errorMessage: null };
    }));
    for (const v of [4, 5, 6]) {
      const r = await c1.send(ApiKey.FindCoordinator, v, { key: '', keyType: 0, coordinatorKeys: keys });
      expect(r.throttleTimeMs).toBe(0);
      expect(r.coordinators).toEqual(expected);
    }
  });

  it('v1+ find transaction coordinators too; an unknown key type is INVALID_REQUEST', async () => {
    const txn = await find(c0, 1, 'fc-txn', 1);
    expect(txn.errorCode).toBe(ErrorCode.NONE);
    expect(ports.has(txn.nodeId)).toBe(true);
    const share = await c0.send(ApiKey.FindCoordinator, 4, { key: '', keyType: 2, coordinatorKeys: ['fc-share'] });
    expect(share.coordinators).toMatchObject([{ key: 'fc-share', nodeId: -1, host: '', port: -1, errorCode: ErrorCode.INVALID_REQUEST }]);
    expect((await find(c0, 3, 'fc-share', 2)).errorCode).toBe(ErrorCode.INVALID_REQUEST);
  });

  it('names the broker that owns the group; another broker refuses its JoinGroup with NOT_COORDINATOR', async () => {
    const groupId = 'fc-owned';
    const nodeId = await coordinatorOf(c0, groupId);
    const [owner, other] = ports.get(nodeId) === cluster.brokers[0]!.port ? [c0, c1] : [c1, c0];
    const first = await joinGroup(owner, 5, { groupId });
    expect(first.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
    expect((await joinGroup(other, 5, { groupId })).errorCode).toBe(ErrorCode.NOT_COORDINATOR);
    expect(await coordinatorOf(c0, groupId)).toBe(nodeId);
    expect(await coordinatorOf(c1, groupId)).toBe(nodeId);
  });
});
