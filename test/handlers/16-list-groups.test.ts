import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode, type ListGroupsRequest } from '../../wire/index.js';
import { GROUP_BROKER_ARGS, commitOffsets, joinNew, stableSingleMember } from '../helpers/raw-group.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic } from '../helpers/topics.js';

let cluster: Cluster;
const clients: RawClient[] = [];

async function client(): Promise<RawClient> {
  const c = await RawClient.connect(cluster.bootstrap, 'list-groups-test');
  clients.push(c);
  return c;
}

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: GROUP_BROKER_ARGS });
  const admin = await client();
  await createTopic(admin, 't', 1);
  // One group in each state: Stable, CompletingRebalance, Empty (offsets only), Empty (members left).
  await stableSingleMember(await client(), 'lg-stable', ['t']);
  await joinNew(await client(), 5, { groupId: 'lg-completing' });
  await commitOffsets(admin, 8, { groupId: 'lg-offsets-only', topics: [{ name: 't', partitions: [{ partitionIndex: 0, committedOffset: 1n }] }] });
  const leaver = await client();
  const m = await stableSingleMember(leaver, 'lg-left', ['t']);
  await leaver.send(ApiKey.LeaveGroup, 1, { groupId: 'lg-left', memberId: m.memberId, members: [] });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

function list(version: number, filters: Partial<ListGroupsRequest> = {}): Promise<{ errorCode: number; groups: { groupId: string; protocolType: string; groupState: string; groupType: string }[] }> {
  return clients[0]!.send(ApiKey.ListGroups, version, { statesFilter: [], typesFilter: [], ...filters });
}

describe('ListGroups', () => {
  it('v0–v3 list every group with its protocol type', async () => {
    for (const v of [0, 3]) {
      const r = await list(v);
      expect(r.errorCode).toBe(ErrorCode.NONE);
      expect(r.groups).toEqual([
        { groupId: 'lg-completing', protocolType: 'consumer', groupState: '', groupType: '' },
        { groupId: 'lg-left', protocolType: 'consumer', groupState: '', groupType: '' },
        { groupId: 'lg-offsets-only', protocolType: '', groupState: '', groupType: '' },
        { groupId: 'lg-stable', protocolType: 'consumer', groupState: '', groupType: '' },
      ]);
    }
  });

  it('v4 gives each group\'s state and filters by state, case-insensitively (KIP-518)', async () => {
    const all = await list(4);
    expect(all.groups.map((g) => [g.groupId, g.groupState])).toEqual([
      ['lg-completing', 'CompletingRebalance'],
      ['lg-left', 'Empty'],
      ['lg-offsets-only', 'Empty'],
      ['lg-stable', 'Stable'],
    ]);
    expect((await list(4, { statesFilter: ['Stable'] })).groups.map((g) => g.groupId)).toEqual(['lg-stable']);
    expect((await list(4, { statesFilter: ['empty', 'STABLE'] })).groups.map((g) => g.groupId)).toEqual(['lg-left', 'lg-offsets-only', 'lg-stable']);
    expect((await list(4, { statesFilter: ['PreparingRebalance'] })).groups).toEqual([]);
  });

  it('v5 names every group "classic" and filters by type (KIP-848)', async () => {
    const r = await list(5, { typesFilter: ['Classic'] });
    expect(r.groups.map((g) => g.groupType)).toEqual(['classic', 'classic', 'classic', 'classic']);
    expect((await list(5, { typesFilter: ['consumer'] })).groups).toEqual([]);
    expect((await list(5, { typesFilter: ['classic'], statesFilter: ['CompletingRebalance'] })).groups).toEqual([
      { groupId: 'lg-completing', protocolType: 'consumer', groupState: 'CompletingRebalance', groupType: 'classic' },
    ]);
  });

  it('each group is listed by exactly one broker of a cluster', async () => {
    const other = await cluster.addBroker();
    const c2 = await RawClient.connect(`127.0.0.1:${other.port}`, 'list-groups-other');
    try {
      const fromOther = await c2.send(ApiKey.ListGroups, 4, { statesFilter: [], typesFilter: [] });
      const fromFirst = await list(4);
      const ids = [...fromFirst.groups, ...fromOther.groups].map((g) => g.groupId).sort();
      expect(ids).toEqual(['lg-completing', 'lg-left', 'lg-offsets-only', 'lg-stable']);
    } finally {
      c2.close();
    }
  });
});
