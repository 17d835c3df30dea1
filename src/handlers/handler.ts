/**
 * The handler contract: one `defineHandler` per Kafka API, listed in `handlers/index.ts`.
 * ApiVersions is computed from that list, so what Strata advertises is exactly what its
 * handlers declare.
 */
import type { RequestBodyByKey, RequestHeader, ResponseBodyByKey } from '../../wire/index.js';
import type { TopicInfo } from '../cluster/topic-store.js';
import { toKafkaErrorCode } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { ServedApi, Services } from './services.js';

/** What a handler knows about the connection a request came on. */
export interface ConnectionInfo {
  /** Unique per broker process, for logs. */
  readonly id: number;
  readonly remoteAddress: string;
  /** The client's zone, from `strata_az=<zone>` in its client.id, or null. */
  zone: string | null;
  /** Closes the connection (requests still in flight on it are dropped). */
  close(reason: string): void;
}

/** Everything a handler gets for one request. */
export interface RequestContext {
  readonly header: RequestHeader;
  readonly connection: ConnectionInfo;
  readonly services: Services;
  readonly log: Logger;
}

/** A lookup that failed (Redis unreachable, …), as the Kafka error every partition gets. */
export interface LookupFailure {
  errorCode: number;
  message: string;
}

/**
 * Awaits a topic lookup for a request: the topic (null when it does not exist), or the
 * lookup's own failure, so that each partition of the topic can answer with it.
 */
export async function lookUpTopic(lookup: Promise<TopicInfo | null>): Promise<{ topic: TopicInfo | null; failure: LookupFailure | null }> {
  try {
    return { topic: await lookup, failure: null };
  } catch (err) {
    return { topic: null, failure: { errorCode: toKafkaErrorCode(err), message: (err as Error).message } };
  }
}

/** Returned by a handler that must not answer (Produce with acks=0). */
export const NO_RESPONSE: unique symbol = Symbol('no response');

export type HandlerResult<K extends keyof ResponseBodyByKey> = ResponseBodyByKey[K] | typeof NO_RESPONSE;

/** One API's handler: the versions it serves (`ServedApi`) and what it does with a request. */
export interface Handler<K extends keyof RequestBodyByKey & keyof ResponseBodyByKey = keyof RequestBodyByKey & keyof ResponseBodyByKey>
  extends ServedApi {
  readonly apiKey: K;
  handle(ctx: RequestContext, body: RequestBodyByKey[K]): HandlerResult<K> | Promise<HandlerResult<K>>;
}

/** Declares a handler; the identity function, there for type inference. */
export function defineHandler<K extends keyof RequestBodyByKey & keyof ResponseBodyByKey>(handler: Handler<K>): Handler<K> {
  return handler;
}

/** The zone a client names in its client.id (`…strata_az=<zone>…`), or null. */
export function zoneFromClientId(clientId: string | null): string | null {
  if (clientId === null) return null;
  const m = /(?:^|[^A-Za-z0-9_])strata_az=([A-Za-z0-9_.-]+)/.exec(clientId);
  return m ? m[1]! : null;
}
