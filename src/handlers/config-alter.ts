/**
 * What AlterConfigs and IncrementalAlterConfigs share: the walk over a request's resources,
 * in Kafka's order of checks, with one answer per resource.
 *
 * 1. A resource named twice in the request: INVALID_REQUEST for every copy.
 * 2. The API's own checks of the config list (null values, repeated names, …).
 * 3. BROKER: the name must be this broker (or empty where cluster-wide is allowed); Strata
 *    has no dynamic broker configs, so any config named is INVALID_REQUEST.
 * 4. Any type other than TOPIC: the API's refusal.
 * 5. TOPIC: a valid, existing topic name, then the API's change (checked before it writes).
 */
import { ErrorCode } from '../../wire/index.js';
import { ConfigResourceType, DUPLICATE_RESOURCE_MESSAGE, brokerResourceProblem, duplicateResources } from '../cluster/config-resources.js';
import { topicNameProblem, type TopicInfo } from '../cluster/topic-store.js';
import { toKafkaErrorCode } from '../errors.js';
import type { RequestContext } from './handler.js';

/** Why a resource is refused: its error code and message. */
export type Refusal = readonly [errorCode: number, errorMessage: string];

/** A resource as both APIs carry it. */
export interface AlterResource {
  resourceType: number;
  resourceName: string;
  configs: readonly { name: string }[];
}

/** One resource's answer, the same shape in both APIs. */
export interface AlterAnswer {
  errorCode: number;
  errorMessage: string | null;
  resourceType: number;
  resourceName: string;
}

export interface AlterRules<R extends AlterResource> {
  /** Checks of the config list before the resource type is looked at. */
  checkConfigs(resource: R): Refusal | null;
  /** Whether a BROKER resource may be named '' (cluster-wide). */
  clusterWideBroker: boolean;
  /** The answer for a resource type other than TOPIC and BROKER. */
  otherType(resource: R): Refusal;
  /**
   * Checks the change to an existing topic and, unless the request only validates, writes
   * it. Returns a refusal, or null when it was fine.
   */
  alterTopic(topic: TopicInfo, resource: R): Promise<Refusal | null>;
  /** Logged with the error when the change fails on an infrastructure fault. */
  failureLog: string;
}

/** Answers each resource of an (Incremental)AlterConfigs request, in request order. */
export async function alterEachResource<R extends AlterResource>(ctx: RequestContext, resources: readonly R[], rules: AlterRules<R>): Promise<AlterAnswer[]> {
  const duplicates = duplicateResources(resources);
  const answers: AlterAnswer[] = [];
  for (const [i, r] of resources.entries()) {
    const refusal = duplicates.has(i) ? ([ErrorCode.INVALID_REQUEST, DUPLICATE_RESOURCE_MESSAGE] as const) : await refusalOf(ctx, r, rules);
    answers.push({
      errorCode: refusal ? refusal[0] : ErrorCode.NONE,
      errorMessage: refusal ? refusal[1] : null,
      resourceType: r.resourceType,
      resourceName: r.resourceName,
    });
  }
  return answers;
}

async function refusalOf<R extends AlterResource>(ctx: RequestContext, r: R, rules: AlterRules<R>): Promise<Refusal | null> {
  const { services } = ctx;
  const configsRefused = rules.checkConfigs(r);
  if (configsRefused) return configsRefused;
  if (r.resourceType === ConfigResourceType.BROKER) {
    const problem = brokerResourceProblem(r.resourceName, services.nodeId, rules.clusterWideBroker);
    if (problem) return [ErrorCode.INVALID_REQUEST, problem];
    if (r.configs.length === 0) return null;
    const names = r.configs.map((c) => c.name).join(', ');
    return [ErrorCode.INVALID_REQUEST, `Cannot update these configs dynamically: ${names}; Strata broker settings are flags (or STRATA_* variables) read at startup`];
  }
  if (r.resourceType !== ConfigResourceType.TOPIC) return rules.otherType(r);
  const nameProblem = topicNameProblem(r.resourceName);
  if (nameProblem) return [ErrorCode.INVALID_TOPIC_EXCEPTION, nameProblem];
  try {
    // Read Redis, not the cache: the change starts from the configs stored now.
    const topic = await services.topics.readByName(r.resourceName);
    if (!topic) return [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic "${r.resourceName}" does not exist`];
    return await rules.alterTopic(topic, r);
  } catch (err) {
    ctx.log.warn({ err: (err as Error).message, topic: r.resourceName }, rules.failureLog);
    return [toKafkaErrorCode(err), (err as Error).message];
  }
}

/** The first config name given more than once, or undefined. */
export function repeatedName(configs: readonly { name: string }[]): string | undefined {
  const names = configs.map((c) => c.name);
  return names.find((n, j) => names.indexOf(n) !== j);
}
