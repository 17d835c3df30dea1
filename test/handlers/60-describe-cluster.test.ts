import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointType } from '../../src/handlers/60-describe-cluster.js';
import { ErrorCode, type DescribeClusterResponse } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { waitFor } from '../helpers/wait.js';

let cluster: Cluster;
let ids: number[];
const clients: RawClient[] = [];

async function connect(clientId?: string): Promise<RawClient> {
  const c = await RawClient.connect(cluster.bootstrap, clientId);
  clients.push(c);
  return c;
}

/**
 * DescribeCluster v0 until it lists exactly the brokers `expected` (registrations spread by
 * heartbeat), at most 10 s; then that answer, for the test to assert.
 */
function untilBrokers(client: RawClient, expected: () => number[]): Promise<DescribeClusterResponse> {
  return waitFor(
    `DescribeCluster to list brokers ${JSON.stringify(expected())}`,
    () => client.send(60, 0, { includeClusterAuthorizedOperations: false, endpointType: EndpointType.BROKER }),
    (res) => JSON.stringify(res.brokers.map((b) => b.brokerId)) === JSON.stringify(expected()),
    10_000,
    100,
  );
}

beforeAll(async () => {
  cluster = await startCluster({ brokers: 2, zones: ['zone-a', 'zone-b'] });
  ids = cluster.brokers.map((b) => b.broker!.nodeId);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

describe('DescribeCluster', () => {
  it('v0 lists every live broker, the controller and the cluster id', async () => {
    const client = await connect();
    const res = await untilBrokers(client, () => ids);
    expect(res).toEqual({
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      endpointType: EndpointType.BROKER,
      clusterId: 'strata-cluster',
      controllerId: Math.min(...ids),
      brokers: [
        { brokerId: ids[0], host: '127.0.0.1', port: cluster.brokers[0]!.port, rack: 'zone-a' },
        { brokerId: ids[1], host: '127.0.0.1', port: cluster.brokers[1]!.port, rack: 'zone-b' },
      ],
      clusterAuthorizedOperations: -2147483648,
    });
  });

  it('v1 lists only the brokers of the zone a client names, and never computes authorized operations', async () => {
    const client = await connect('app strata_az=zone-b');
    // Until broker 0 knows broker 1, the zone has no brokers and the answer falls back to all.
    await untilBrokers(client, () => [ids[1]!]);
    const res = await client.send(60, 1, { includeClusterAuthorizedOperations: true, endpointType: EndpointType.BROKER });
    expect(res).toEqual({
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      endpointType: EndpointType.BROKER,
      clusterId: 'strata-cluster',
      controllerId: ids[1],
      brokers: [{ brokerId: ids[1], host: '127.0.0.1', port: cluster.brokers[1]!.port, rack: 'zone-b' }],
      clusterAuthorizedOperations: -2147483648,
    });
  });

  it('v1 refuses controller endpoints with MISMATCHED_ENDPOINT_TYPE and unknown ones with UNSUPPORTED_ENDPOINT_TYPE', async () => {
    const client = await connect();
    const refused = { throttleTimeMs: 0, endpointType: EndpointType.BROKER, clusterId: '', controllerId: -1, brokers: [], clusterAuthorizedOperations: -2147483648 };
    expect(await client.send(60, 1, { includeClusterAuthorizedOperations: false, endpointType: EndpointType.CONTROLLER })).toEqual({
      ...refused,
      errorCode: ErrorCode.MISMATCHED_ENDPOINT_TYPE,
      errorMessage: 'The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER: Strata has no controller endpoints',
    });
    expect(await client.send(60, 1, { includeClusterAuthorizedOperations: false, endpointType: 3 })).toEqual({
      ...refused,
      errorCode: ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
      errorMessage: 'Unsupported endpoint type 3',
    });
  });
});
