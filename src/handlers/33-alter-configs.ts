/**
 * AlterConfigs (key 33), versions 0–2.
 *
 * v1 changes only quota behaviour; v2 is flexible. (IncrementalAlterConfigs, KIP-339,
 * supersedes it, but kafkajs and older tools still use it.)
 *
 * A TOPIC resource's overrides are replaced by exactly the set given: configs left out go
 * back to their defaults. Every name and value is checked first (topic-configs.ts); an
 * unknown name or a bad value is INVALID_CONFIG with the reason, and nothing changes.
 * `validateOnly` checks without writing. As in Kafka (ConfigAdminManager), a null value is
 * INVALID_REQUEST, and a resource named twice in one request is INVALID_REQUEST for both.
 *
 * BROKER resources: Strata's broker settings are fixed at startup (flags and STRATA_*
 * variables), so it has no dynamic broker configs. An empty set, which in Kafka clears the
 * broker's dynamic configs, succeeds and changes nothing; setting anything is INVALID_REQUEST
 * naming the configs, which is how Kafka answers configs it cannot update dynamically. The
 * resource name must be this broker's node id. BROKER_LOGGER is INVALID_REQUEST, as in Kafka
 * (log levels are changed only through IncrementalAlterConfigs), and so is any other type.
 */
import { ErrorCode, type AlterConfigsResponseAlterConfigsResourceResponse } from '../../wire/index.js';
import { ConfigResourceType, DUPLICATE_RESOURCE_MESSAGE, brokerResourceProblem, duplicateResources } from '../cluster/config-resources.js';
import { validateTopicConfig } from '../cluster/topic-configs.js';
import { topicNameProblem } from '../cluster/topics.js';
import { toKafkaErrorCode } from '../errors.js';
import { defineHandler } from './handler.js';

export const alterConfigsHandler = defineHandler({
  apiKey: 33,
  versions: [0, 2],
  async handle(ctx, req) {
    const { broker } = ctx;
    const duplicates = duplicateResources(req.resources);
    const responses: AlterConfigsResponseAlterConfigsResourceResponse[] = [];
    for (const [i, r] of req.resources.entries()) {
      const out: AlterConfigsResponseAlterConfigsResourceResponse = {
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        resourceType: r.resourceType,
        resourceName: r.resourceName,
      };
      responses.push(out);
      const fail = (errorCode: number, errorMessage: string): void => {
        out.errorCode = errorCode;
        out.errorMessage = errorMessage;
      };
      if (duplicates.has(i)) {
        fail(ErrorCode.INVALID_REQUEST, DUPLICATE_RESOURCE_MESSAGE);
        continue;
      }
      if (r.resourceType !== ConfigResourceType.TOPIC && r.resourceType !== ConfigResourceType.BROKER) {
        fail(ErrorCode.INVALID_REQUEST, `resource type ${r.resourceType} cannot be altered with AlterConfigs; use 2 (topic) or 4 (broker)`);
        continue;
      }
      const nulls = r.configs.filter((c) => c.value === null).map((c) => c.name);
      if (nulls.length > 0) {
        fail(ErrorCode.INVALID_REQUEST, `Null value not supported for : ${nulls.join(', ')}`);
        continue;
      }
      const names = r.configs.map((c) => c.name);
      const repeated = names.filter((n, j) => names.indexOf(n) !== j);
      if (repeated.length > 0) {
        fail(ErrorCode.INVALID_REQUEST, `config "${repeated[0]}" appears more than once; give each config at most once`);
        continue;
      }

      if (r.resourceType === ConfigResourceType.BROKER) {
        const problem = brokerResourceProblem(r.resourceName, broker.nodeId, false);
        if (problem) fail(ErrorCode.INVALID_REQUEST, problem);
        else if (names.length > 0) {
          fail(ErrorCode.INVALID_REQUEST, `Cannot update these configs dynamically: ${names.join(', ')}; Strata broker settings are flags (or STRATA_* variables) read at startup`);
        }
        continue;
      }

      const nameProblem = topicNameProblem(r.resourceName);
      if (nameProblem) {
        fail(ErrorCode.INVALID_TOPIC_EXCEPTION, nameProblem);
        continue;
      }
      try {
        // Read Redis, not the cache: the overrides to drop are those stored now.
        const topic = await broker.topics.readByName(r.resourceName);
        if (!topic) {
          fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic "${r.resourceName}" does not exist`);
          continue;
        }
        const configs: Record<string, string> = {};
        for (const c of r.configs) {
          const invalid = validateTopicConfig(c.name, c.value);
          if (invalid) {
            fail(ErrorCode.INVALID_CONFIG, invalid);
            break;
          }
          configs[c.name] = c.value!;
        }
        if (out.errorCode === ErrorCode.NONE && !req.validateOnly) await broker.topics.setConfigs(topic, configs, true);
      } catch (err) {
        ctx.log.warn({ err: (err as Error).message, topic: r.resourceName }, 'alter configs failed');
        fail(toKafkaErrorCode(err), (err as Error).message);
      }
    }
    return { throttleTimeMs: 0, responses };
  },
});
