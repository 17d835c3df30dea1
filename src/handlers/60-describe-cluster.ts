/**
 * DescribeCluster (key 60), versions 0–1.
 *
 * v0 (KIP-700) answers the cluster id, controller and brokers without Metadata's topic work;
 * v1 adds the endpoint type (KIP-919): 1 asks for brokers.
 *
 * Brokers are the live brokers a client in the connection's zone should see, as in
 * Metadata, and the controller is the node Metadata names (Strata has no controller quorum).
 * Cluster authorized operations are never computed (no ACLs): the answer is the schema's
 * "not provided" value whether or not they are asked for.
 *
 * Other endpoint types are refused as a Kafka broker listener refuses them
 * (AuthHelper.computeDescribeClusterResponse): 2 (controllers) is MISMATCHED_ENDPOINT_TYPE,
 * since a Strata broker is not a controller endpoint, and any other type is
 * UNSUPPORTED_ENDPOINT_TYPE; both with a message and no cluster data.
 */
import { ErrorCode } from '../../wire/index.js';
import { defineHandler } from './handler.js';

/** KIP-919 endpoint types. */
export const EndpointType = {
  BROKER: 1,
  CONTROLLER: 2,
} as const;

/** "Not provided" for authorized-operations fields (KIP-430). */
const OPERATIONS_NOT_PROVIDED = -2147483648;

export const describeClusterHandler = defineHandler({
  apiKey: 60,
  versions: [0, 1],
  handle(ctx, req) {
    const { services, header } = ctx;
    const refused = (errorCode: number, errorMessage: string) => ({
      throttleTimeMs: 0,
      errorCode,
      errorMessage,
      endpointType: EndpointType.BROKER,
      clusterId: '',
      controllerId: -1,
      brokers: [],
      clusterAuthorizedOperations: OPERATIONS_NOT_PROVIDED,
    });
    // v0 carries no endpoint type; the decoder gives the schema default (brokers).
    if (header.apiVersion >= 1 && req.endpointType !== EndpointType.BROKER) {
      if (req.endpointType === EndpointType.CONTROLLER) {
        return refused(ErrorCode.MISMATCHED_ENDPOINT_TYPE, 'The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER: Strata has no controller endpoints');
      }
      return refused(ErrorCode.UNSUPPORTED_ENDPOINT_TYPE, `Unsupported endpoint type ${req.endpointType}`);
    }
    const zone = ctx.connection.zone;
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      errorMessage: null,
      endpointType: EndpointType.BROKER,
      clusterId: services.config.clusterId,
      controllerId: services.placement.controllerId(zone),
      brokers: services.placement.brokersFor(zone).map((b) => ({ brokerId: b.nodeId, host: b.host, port: b.port, rack: b.rack })),
      clusterAuthorizedOperations: OPERATIONS_NOT_PROVIDED,
    };
  },
});
