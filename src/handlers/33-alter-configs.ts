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
import { ErrorCode } from '../../wire/index.js';
import { ConfigResourceType } from '../cluster/config-resources.js';
import { validateTopicConfig } from '../cluster/topic-configs.js';
import { alterEachResource, repeatedName } from './config-alter.js';
import { defineHandler } from './handler.js';

export const alterConfigsHandler = defineHandler({
  apiKey: 33,
  versions: [0, 2],
  async handle(ctx, req) {
    const responses = await alterEachResource(ctx, req.resources, {
      checkConfigs(r) {
        if (r.resourceType !== ConfigResourceType.TOPIC && r.resourceType !== ConfigResourceType.BROKER) {
          return [ErrorCode.INVALID_REQUEST, `resource type ${r.resourceType} cannot be altered with AlterConfigs; use 2 (topic) or 4 (broker)`];
        }
        const nulls = r.configs.filter((c) => c.value === null).map((c) => c.name);
        if (nulls.length > 0) return [ErrorCode.INVALID_REQUEST, `Null value not supported for : ${nulls.join(', ')}`];
        const repeated = repeatedName(r.configs);
        if (repeated !== undefined) return [ErrorCode.INVALID_REQUEST, `config "${repeated}" appears more than once; give each config at most once`];
        return null;
      },
      clusterWideBroker: false,
      // Unreachable: checkConfigs refuses every other type first.
      otherType: (r) => [ErrorCode.INVALID_REQUEST, `resource type ${r.resourceType} cannot be altered with AlterConfigs`],
      async alterTopic(topic, r) {
        const configs: Record<string, string> = {};
        for (const c of r.configs) {
          const invalid = validateTopicConfig(c.name, c.value);
          if (invalid) return [ErrorCode.INVALID_CONFIG, invalid];
          configs[c.name] = c.value!;
        }
        // The overrides are replaced by exactly this set.
        if (!req.validateOnly) await ctx.services.topics.setConfigs(topic, configs, true);
        return null;
      },
      failureLog: 'alter configs failed',
    });
    return { throttleTimeMs: 0, responses };
  },
});
