/**
 * `strata groups list | describe <group>`: consumer groups as an operator sees them —
 * members, their assigned partitions, committed offsets, high watermarks and lag — read
 * through the Kafka protocol from any broker (FindCoordinator, DescribeGroups, OffsetFetch,
 * ListOffsets), so it works against any Strata cluster the machine can reach.
 */
import { ErrorCode, Reader, decodeConsumerProtocolAssignment } from '../../wire/index.js';
import { WireClient } from '../harness/wire-client.js';
import type { Output } from './broker.js';
import { errorName, parseKafkaCliArgs, table } from './kafka-cli.js';

interface PartitionLag {
  topic: string;
  partition: number;
  memberId: string | null;
  committed: number;
  hw: number;
  lag: number | null;
}

/** Decodes a consumer-protocol assignment into topic → partitions (empty when unreadable). */
function assignedPartitions(assignment: Buffer): { topic: string; partitions: number[] }[] {
  if (assignment.length < 2) return [];
  const r = new Reader(assignment);
  const version = r.int16();
  return decodeConsumerProtocolAssignment(r, Math.min(Math.max(version, 0), 3)).assignedPartitions;
}

async function describeGroup(client: WireClient, groupId: string): Promise<{ state: string; protocol: string; members: { memberId: string; clientId: string; host: string; assignment: { topic: string; partitions: number[] }[] }[]; lags: PartitionLag[] }> {
  const coord = await client.send(10, 3, { key: groupId, keyType: 0, coordinatorKeys: [] });
  if (coord.errorCode !== ErrorCode.NONE) throw new Error(`FindCoordinator for group "${groupId}": ${errorName(coord.errorCode)}`);
  const c = await WireClient.connect(`${coord.host}:${coord.port}`, 'strata-cli');
  try {
    const described = await c.send(15, 5, { groups: [groupId], includeAuthorizedOperations: false });
    const g = described.groups[0]!;
    if (g.errorCode !== ErrorCode.NONE) throw new Error(`DescribeGroups "${groupId}": ${errorName(g.errorCode)}`);
    const members = g.members.map((m) => ({ memberId: m.memberId, clientId: m.clientId, host: m.clientHost, assignment: g.protocolType === 'consumer' ? assignedPartitions(m.memberAssignment) : [] }));
    const owner = new Map<string, string>();
    for (const m of members) for (const a of m.assignment) for (const p of a.partitions) owner.set(`${a.topic}:${p}`, m.memberId);
    const fetched = await c.send(9, 8, { groupId: '', topics: [], groups: [{ groupId, memberId: null, memberEpoch: -1, topics: null }], requireStable: false });
    const committed = new Map<string, number>();
    for (const t of fetched.groups[0]?.topics ?? []) for (const p of t.partitions) committed.set(`${t.name}:${p.partitionIndex}`, Number(p.committedOffset));
    const keys = new Set([...owner.keys(), ...committed.keys()]);
    const byTopic = new Map<string, number[]>();
    for (const k of keys) {
      const at = k.lastIndexOf(':');
      const list = byTopic.get(k.slice(0, at)) ?? [];
      list.push(Number(k.slice(at + 1)));
      byTopic.set(k.slice(0, at), list);
    }
    const latest = await client.send(2, 5, {
      replicaId: -1,
      isolationLevel: 0,
      topics: [...byTopic].map(([name, ps]) => ({ name, partitions: ps.map((p) => ({ partitionIndex: p, currentLeaderEpoch: -1, timestamp: -1n, maxNumOffsets: 1 })) })),
      timeoutMs: 0,
    });
    const hw = new Map<string, number>();
    for (const t of latest.topics) for (const p of t.partitions) hw.set(`${t.name}:${p.partitionIndex}`, p.errorCode === ErrorCode.NONE ? Number(p.offset) : -1);
    const lags: PartitionLag[] = [...keys].sort().map((k) => {
      const at = k.lastIndexOf(':');
      const cm = committed.get(k) ?? -1;
      const h = hw.get(k) ?? -1;
      return { topic: k.slice(0, at), partition: Number(k.slice(at + 1)), memberId: owner.get(k) ?? null, committed: cm, hw: h, lag: cm >= 0 && h >= 0 ? h - cm : null };
    });
    lags.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
    return { state: g.groupState, protocol: g.protocolData, members, lags };
  } finally {
    c.close();
  }
}

export async function runGroups(args: readonly string[], output: Output): Promise<number> {
  const parsed = parseKafkaCliArgs(args);
  if (typeof parsed === 'string') {
    output.err(`strata groups: ${parsed}`);
    return 2;
  }
  const [sub, groupId] = parsed.rest;
  if (sub !== 'list' && !(sub === 'describe' && groupId)) {
    output.err('usage: strata groups list | describe <group> [--bootstrap host:port] [--json]');
    return 2;
  }
  let client: WireClient;
  try {
    client = await WireClient.connect(parsed.bootstrap, 'strata-cli');
  } catch (err) {
    output.err(`strata groups: ${(err as Error).message}`);
    return 1;
  }
  try {
    if (sub === 'list') {
      const meta = await client.send(3, 9, { topics: [], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
      const groups: { groupId: string; state: string; protocolType: string }[] = [];
      for (const b of meta.brokers) {
        const c = await WireClient.connect(`${b.host}:${b.port}`, 'strata-cli');
        try {
          const r = await c.send(16, 4, { statesFilter: [], typesFilter: [] });
          for (const g of r.groups) groups.push({ groupId: g.groupId, state: g.groupState, protocolType: g.protocolType });
        } finally {
          c.close();
        }
      }
      groups.sort((a, b) => (a.groupId < b.groupId ? -1 : 1));
      if (parsed.json) output.out(JSON.stringify(groups));
      else for (const line of table([['GROUP', 'STATE', 'TYPE'], ...groups.map((g) => [g.groupId, g.state, g.protocolType])])) output.out(line);
      return 0;
    }
    const d = await describeGroup(client, groupId!);
    if (parsed.json) {
      output.out(JSON.stringify({ groupId, ...d }));
      return 0;
    }
    output.out(`group ${groupId}: ${d.state}${d.protocol ? ` (${d.protocol})` : ''}, ${d.members.length} member(s)`);
    const rows = [['TOPIC', 'PARTITION', 'COMMITTED', 'HIGH-WATERMARK', 'LAG', 'MEMBER', 'CLIENT', 'HOST']];
    for (const l of d.lags) {
      const m = d.members.find((x) => x.memberId === l.memberId);
      rows.push([l.topic, String(l.partition), l.committed >= 0 ? String(l.committed) : '-', l.hw >= 0 ? String(l.hw) : '-', l.lag === null ? '-' : String(l.lag), l.memberId ?? '-', m?.clientId ?? '-', m?.host ?? '-']);
    }
    for (const line of table(rows)) output.out(line);
    return 0;
  } catch (err) {
    output.err(`strata groups: ${(err as Error).message}`);
    return 1;
  } finally {
    client.close();
  }
}
