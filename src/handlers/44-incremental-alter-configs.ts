/**
 * IncrementalAlterConfigs (key 44), versions 0–1.
 *
 * v0 (KIP-339) changes named configs one operation at a time; v1 is flexible.
 *
 * Operations on a TOPIC resource: SET (0) makes the value the topic's override; DELETE (1)
 * removes the override, so the default applies again; APPEND (2) and SUBTRACT (3), for list
 * configs only (`cleanup.policy`), add items not yet present or remove items, starting from
 * the current value (override, else default). Every resulting value is checked
 * (topic-configs.ts) before anything is written; an unknown name, a bad result, or APPEND and
 * SUBTRACT on a non-list config is INVALID_CONFIG and nothing changes. `validateOnly` checks
 * without writing. As in Kafka (ConfigAdminManager): a null value for anything but DELETE,
 * a config named twice in one resource, an unknown operation, and a resource named twice in
 * one request are INVALID_REQUEST.
 *
 * BROKER resources (this broker's node id, or empty for cluster-wide): Strata has no dynamic
 * broker configs (settings are flags fixed at startup), so an empty operation list succeeds
 * and any operation is INVALID_REQUEST naming the configs, as Kafka answers configs it
 * cannot update dynamically.
 *
 * Not implemented: BROKER_LOGGER (KIP-412) is INVALID_REQUEST; Strata's log level is the
 * --log-level flag.
 */
import { ErrorCode } from '../../wire/index.js';
import { ConfigResourceType } from '../cluster/config-resources.js';
import { ConfigType, TOPIC_CONFIGS, validateTopicConfig } from '../cluster/topic-configs.js';
import { alterEachResource, repeatedName } from './config-alter.js';
import { defineHandler } from './handler.js';

/** IncrementalAlterConfigs operations (KIP-339). */
export const AlterConfigOp = {
  SET: 0,
  DELETE: 1,
  APPEND: 2,
  SUBTRACT: 3,
} as const;

const OP_NAMES = ['SET', 'DELETE', 'APPEND', 'SUBTRACT'];

function listItems(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export const incrementalAlterConfigsHandler = defineHandler({
  apiKey: 44,
  versions: [0, 1],
  async handle(ctx, req) {
    const { services } = ctx;
    const responses = await alterEachResource(ctx, req.resources, {
      checkConfigs(r) {
        const nulls = r.configs.filter((c) => c.configOperation !== AlterConfigOp.DELETE && c.value === null).map((c) => c.name);
        if (nulls.length > 0) return [ErrorCode.INVALID_REQUEST, `Null value not supported for : ${nulls.join(', ')}`];
        const unknownOp = r.configs.find((c) => OP_NAMES[c.configOperation] === undefined);
        if (unknownOp) {
          return [ErrorCode.INVALID_REQUEST, `unknown operation ${unknownOp.configOperation} for "${unknownOp.name}"; use 0 (SET), 1 (DELETE), 2 (APPEND) or 3 (SUBTRACT)`];
        }
        const repeated = repeatedName(r.configs);
        if (repeated !== undefined) return [ErrorCode.INVALID_REQUEST, `Error due to duplicate config keys: "${repeated}" appears more than once`];
        return null;
      },
      clusterWideBroker: true,
      otherType: (r) =>
        r.resourceType === ConfigResourceType.BROKER_LOGGER
          ? [ErrorCode.INVALID_REQUEST, 'Strata has no per-logger levels to change; the broker log level is its --log-level setting']
          : [ErrorCode.INVALID_REQUEST, `unknown resource type ${r.resourceType}; use 2 (topic) or 4 (broker)`],
      async alterTopic(topic, r) {
        const changes: Record<string, string | null> = {};
        for (const c of r.configs) {
          const def = TOPIC_CONFIGS.get(c.name);
          if (!def) return [ErrorCode.INVALID_CONFIG, validateTopicConfig(c.name, c.value)!];
          if (c.configOperation === AlterConfigOp.SET) changes[c.name] = c.value!;
          else if (c.configOperation === AlterConfigOp.DELETE) changes[c.name] = null;
          else {
            if (def.type !== ConfigType.LIST) {
              return [ErrorCode.INVALID_CONFIG, `cannot ${OP_NAMES[c.configOperation]} to ${c.name}: it is not a list config; use SET`];
            }
            // APPEND and SUBTRACT start from the value stored now (override, else default).
            let items = listItems(topic.configs[c.name] ?? def.defaultValue(services.config));
            const given = listItems(c.value!);
            if (c.configOperation === AlterConfigOp.APPEND) items.push(...given.filter((g, j) => !items.includes(g) && given.indexOf(g) === j));
            else items = items.filter((item) => !given.includes(item));
            changes[c.name] = items.join(',');
          }
          const problem = validateTopicConfig(c.name, changes[c.name] ?? null);
          if (problem) return [ErrorCode.INVALID_CONFIG, problem];
        }
        if (!req.validateOnly && r.configs.length > 0) await services.topics.setConfigs(topic, changes, false);
        return null;
      },
      failureLog: 'incremental alter configs failed',
    });
    return { throttleTimeMs: 0, responses };
  },
});
