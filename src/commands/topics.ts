/**
 * `strata topics list | describe <topic>`: topics as an operator sees them, read through the
 * Kafka protocol from any broker. `describe` shows per partition the leader, log start, high
 * watermark, last stable offset and stored bytes (Metadata, ListOffsets, and DescribeLogDirs
 * asked of every broker); with `--http host:port` (a broker's admin listener) it adds the
 * objects and index runs each partition's data sits in.
 */
import { ErrorCode } from '../../wire/index.js';
import { WireClient } from '../harness/wire-client.js';
import type { Output } from './broker.js';
import { errorName, parseKafkaCliArgs, table } from './kafka-cli.js';

/** One partition as `describe` reports it. */
export interface PartitionDescription {
  partition: number;
  leader: number;
  logStart: number;
  highWatermark: number;
  lastStable: number;
  /** Stored bytes (DescribeLogDirs), -1 when no broker reported the partition. */
  storedBytes: number;
  /** Segment objects holding its data, when the admin API was asked; else null. */
  objects: number | null;
  /** Index entries (runs), when the admin API was asked; else null. */
  runs: number | null;
}

const USAGE = 'usage: strata topics list | describe <topic> [--bootstrap host:port] [--http host:port] [--json]';

async function metadata(client: WireClient, topics: string[] | null) {
  return client.send(3, 9, {
    topics: topics === null ? null : topics.map((name) => ({ topicId: '', name })),
    allowAutoTopicCreation: false,
    includeClusterAuthorizedOperations: false,
    includeTopicAuthorizedOperations: false,
  });
}

/** ListOffsets v5 for every partition at `timestamp` (-2 earliest, -1 latest) and isolation. */
async function offsetsAt(client: WireClient, topic: string, partitions: number[], timestamp: bigint, isolationLevel: number): Promise<Map<number, number>> {
  const res = await client.send(2, 5, {
    replicaId: -1,
    isolationLevel,
    topics: [{ name: topic, partitions: partitions.map((p) => ({ partitionIndex: p, currentLeaderEpoch: -1, timestamp, maxNumOffsets: 1 })) }],
    timeoutMs: 0,
  });
  const out = new Map<number, number>();
  for (const p of res.topics[0]?.partitions ?? []) {
    if (p.errorCode !== ErrorCode.NONE) throw new Error(`ListOffsets ${topic}/${p.partitionIndex}: ${errorName(p.errorCode)}`);
    out.set(p.partitionIndex, Number(p.offset));
  }
  return out;
}

/** Stored bytes per partition of `topic`, from DescribeLogDirs on every broker. */
async function storedBytes(brokers: readonly { host: string; port: number }[], topic: string, partitions: number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const b of brokers) {
    const c = await WireClient.connect(`${b.host}:${b.port}`, 'strata-cli');
    try {
      const res = await c.send(35, 4, { topics: [{ topic, partitions }] });
      for (const dir of res.results) {
        if (dir.errorCode !== ErrorCode.NONE) throw new Error(`DescribeLogDirs on ${b.host}:${b.port}: ${errorName(dir.errorCode)}`);
        for (const t of dir.topics) for (const p of t.partitions) out.set(p.partitionIndex, Number(p.partitionSize));
      }
    } finally {
      c.close();
    }
  }
  return out;
}

/** Objects and runs per partition from a broker's admin API (`GET /api/v1/topics/<name>`). */
async function storageDetail(http: string, topic: string): Promise<Map<number, { objects: number; runs: number }>> {
  const res = await fetch(`http://${http}/api/v1/topics/${encodeURIComponent(topic)}`);
  if (!res.ok) throw new Error(`GET http://${http}/api/v1/topics/${topic} answered ${res.status}: ${(await res.text()).trim()}`);
  const body = (await res.json()) as { partitions: { partition: number; objects: number; runs: number }[] };
  return new Map(body.partitions.map((p) => [p.partition, { objects: p.objects, runs: p.runs }]));
}

/** Describes one topic's partitions; throws with the Kafka error name when it does not exist. */
export async function describeTopic(client: WireClient, topic: string, http: string | null): Promise<{ topicId: string; partitions: PartitionDescription[] }> {
  const meta = await metadata(client, [topic]);
  const t = meta.topics[0];
  if (!t || t.errorCode !== ErrorCode.NONE) throw new Error(`topic "${topic}": ${errorName(t?.errorCode ?? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)}`);
  const indexes = t.partitions.map((p) => p.partitionIndex).sort((a, b) => a - b);
  const [starts, ends, stable, sizes, detail] = await Promise.all([
    offsetsAt(client, topic, indexes, -2n, 0),
    offsetsAt(client, topic, indexes, -1n, 0),
    offsetsAt(client, topic, indexes, -1n, 1),
    storedBytes(meta.brokers, topic, indexes),
    http === null ? Promise.resolve(null) : storageDetail(http, topic),
  ]);
  const leaders = new Map(t.partitions.map((p) => [p.partitionIndex, p.leaderId]));
  return {
    topicId: t.topicId,
    partitions: indexes.map((p) => ({
      partition: p,
      leader: leaders.get(p) ?? -1,
      logStart: starts.get(p) ?? -1,
      highWatermark: ends.get(p) ?? -1,
      lastStable: stable.get(p) ?? -1,
      storedBytes: sizes.get(p) ?? -1,
      objects: detail?.get(p)?.objects ?? null,
      runs: detail?.get(p)?.runs ?? null,
    })),
  };
}

export async function runTopics(args: readonly string[], output: Output): Promise<number> {
  const parsed = parseKafkaCliArgs(args, ['--http']);
  if (typeof parsed === 'string') {
    output.err(`strata topics: ${parsed}`);
    output.err(USAGE);
    return 2;
  }
  const [sub, topic, extra] = parsed.rest;
  if (extra !== undefined || !((sub === 'list' && topic === undefined) || (sub === 'describe' && topic))) {
    output.err(USAGE);
    return 2;
  }
  let client: WireClient;
  try {
    client = await WireClient.connect(parsed.bootstrap, 'strata-cli');
  } catch (err) {
    output.err(`strata topics: ${(err as Error).message}`);
    return 1;
  }
  try {
    if (sub === 'list') {
      const meta = await metadata(client, null);
      const topics = meta.topics
        .filter((t) => t.errorCode === ErrorCode.NONE && t.name !== null)
        .map((t) => ({ name: t.name!, topicId: t.topicId, partitions: t.partitions.length }))
        .sort((a, b) => (a.name < b.name ? -1 : 1));
      if (parsed.json) output.out(JSON.stringify(topics));
      else for (const line of table([['TOPIC', 'PARTITIONS', 'TOPIC-ID'], ...topics.map((t) => [t.name, String(t.partitions), t.topicId])])) output.out(line);
      return 0;
    }
    const d = await describeTopic(client, topic!, parsed.options.get('--http') ?? null);
    if (parsed.json) {
      output.out(JSON.stringify({ topic, ...d }));
      return 0;
    }
    const total = d.partitions.reduce((n, p) => n + Math.max(0, p.storedBytes), 0);
    output.out(`topic ${topic} (${d.topicId}): ${d.partitions.length} partition(s), ${total} bytes stored`);
    const withDetail = d.partitions.some((p) => p.objects !== null);
    const header = ['PARTITION', 'LEADER', 'LOG-START', 'HIGH-WATERMARK', 'LAST-STABLE', 'STORED-BYTES', ...(withDetail ? ['OBJECTS', 'RUNS'] : [])];
    const rows = d.partitions.map((p) => [
      String(p.partition),
      String(p.leader),
      String(p.logStart),
      String(p.highWatermark),
      String(p.lastStable),
      p.storedBytes >= 0 ? String(p.storedBytes) : '-',
      ...(withDetail ? [p.objects === null ? '-' : String(p.objects), p.runs === null ? '-' : String(p.runs)] : []),
    ]);
    for (const line of table([header, ...rows])) output.out(line);
    return 0;
  } catch (err) {
    output.err(`strata topics: ${(err as Error).message}`);
    return 1;
  } finally {
    client.close();
  }
}
