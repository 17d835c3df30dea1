/**
 * The load generators' connections: the harness's raw client (src/harness/wire-client.ts),
 * whose pre-encoded {@link prepareRequest} path costs next to nothing per request, set up for
 * load (no Nagle delay, responses up to 1 GiB), and the one read the benchmark repeats.
 */
import { ErrorCode } from '../wire/index.js';
import { WireClient } from '../src/harness/wire-client.js';

export { WireClient, createTopic, prepareRequest, type PreparedRequest } from '../src/harness/wire-client.js';

/** Connects to a broker on `host:port` for load: requests go out at once, any response size. */
export function connectBench(port: number, host = '127.0.0.1'): Promise<WireClient> {
  return WireClient.connect(`${host}:${port}`, { clientId: 'strata-bench', noDelay: true, maxFrameBytes: 1024 * 1024 * 1024 });
}

/** High watermarks of partitions 0..n-1 (ListOffsets v7, LATEST). */
export function highWatermarks(conn: WireClient, topic: string, partitions: number): Promise<number[]> {
  return listOffsets(conn, topic, partitions, -1n);
}

/** Log start offsets of partitions 0..n-1 (ListOffsets v7, EARLIEST). */
export function logStartOffsets(conn: WireClient, topic: string, partitions: number): Promise<number[]> {
  return listOffsets(conn, topic, partitions, -2n);
}

async function listOffsets(conn: WireClient, topic: string, partitions: number, timestamp: bigint): Promise<number[]> {
  const res = await conn.send(2, 7, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{ name: topic, partitions: Array.from({ length: partitions }, (_, p) => ({ partitionIndex: p, currentLeaderEpoch: -1, timestamp, maxNumOffsets: 1 })) }],
    timeoutMs: 0,
  });
  const out = new Array<number>(partitions).fill(0);
  for (const p of res.topics[0]!.partitions) {
    if (p.errorCode !== ErrorCode.NONE) throw new Error(`ListOffsets ${topic}/${p.partitionIndex} failed with error ${p.errorCode}`);
    out[p.partitionIndex] = Number(p.offset);
  }
  return out;
}
