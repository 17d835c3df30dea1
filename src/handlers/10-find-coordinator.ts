/**
 * FindCoordinator (key 10), versions 0–6.
 *
 * v1 key types (0 group, 1 transaction) and error messages; v3 flexible; v4 batched keys
 * (KIP-699) with per-key answers; v5 and v6 only change error semantics for the new
 * coordinators (KIP-890, KIP-932).
 *
 * The coordinator of a key is the broker holding its lease when that broker is alive, else
 * the rendezvous choice among live brokers; that broker takes the lease on the first request.
 * Share-group keys (type 2) are not supported: INVALID_REQUEST.
 */
import { ErrorCode, type FindCoordinatorResponseCoordinator } from '../../wire/index.js';
import { toKafkaErrorCode } from '../errors.js';
import { defineHandler } from './handler.js';

const KEY_TYPE_GROUP = 0;
const KEY_TYPE_TRANSACTION = 1;

export const findCoordinatorHandler = defineHandler({
  apiKey: 10,
  versions: [0, 6],
  async handle(ctx, req) {
    const { services, header } = ctx;
    const v = header.apiVersion;
    const keyType = v >= 1 ? req.keyType : KEY_TYPE_GROUP;
    const keys = v >= 4 ? req.coordinatorKeys : [req.key];
    const coordinators: FindCoordinatorResponseCoordinator[] = await Promise.all(
      keys.map(async (key): Promise<FindCoordinatorResponseCoordinator> => {
        const out: FindCoordinatorResponseCoordinator = { key, nodeId: -1, host: '', port: -1, errorCode: ErrorCode.NONE, errorMessage: null };
        if (keyType !== KEY_TYPE_GROUP && keyType !== KEY_TYPE_TRANSACTION) {
          out.errorCode = ErrorCode.INVALID_REQUEST;
          out.errorMessage = `coordinator key type ${keyType} is not supported`;
          return out;
        }
        if (key === '') {
          out.errorCode = keyType === KEY_TYPE_GROUP ? ErrorCode.INVALID_GROUP_ID : ErrorCode.INVALID_REQUEST;
          out.errorMessage = 'the coordinator key is empty';
          return out;
        }
        try {
          const b = await services.placement.coordinatorFor(key, keyType === KEY_TYPE_GROUP ? 'g' : 'x');
          out.nodeId = b.nodeId;
          out.host = b.host;
          out.port = b.port;
        } catch (err) {
          out.errorCode = toKafkaErrorCode(err) === ErrorCode.UNKNOWN_SERVER_ERROR ? ErrorCode.COORDINATOR_NOT_AVAILABLE : toKafkaErrorCode(err);
          out.errorMessage = (err as Error).message;
        }
        return out;
      }),
    );
    if (v >= 4) return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, errorMessage: null, nodeId: 0, host: '', port: 0, coordinators };
    const c = coordinators[0]!;
    return { throttleTimeMs: 0, errorCode: c.errorCode, errorMessage: c.errorMessage, nodeId: c.nodeId, host: c.host, port: c.port, coordinators: [] };
  },
});
