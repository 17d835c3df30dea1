/**
 * DescribeConfigs (key 32), versions 0–4.
 *
 * v0 says whether each value is a default (`isDefault`); v1 replaces that with the config
 * source and adds synonyms on request (`includeSynonyms`, KIP-226); v2 changes only quota
 * behaviour; v3 adds config types and documentation on request (`includeDocumentation`,
 * KIP-569); v4 is flexible. `configurationKeys` limits the answer to the names given (unknown
 * names are left out, as Kafka does); null means every config.
 *
 * TOPIC resources list every topic config Strata understands (topic-configs.ts): the topic's
 * override (TOPIC_CONFIG) or the default with its source (DEFAULT_CONFIG, or
 * STATIC_BROKER_CONFIG when a broker flag sets it). Synonyms list the override, then the
 * default under its Kafka broker-level name (`retention.ms` → `log.retention.ms`): a flag set
 * away from Kafka's default (`--log-retention-ms`) as STATIC_BROKER_CONFIG, followed by Kafka's
 * default as DEFAULT_CONFIG. An unknown topic is UNKNOWN_TOPIC_OR_PARTITION, an invalid name
 * INVALID_TOPIC_EXCEPTION.
 *
 * BROKER resources named by this broker's node id list its settings (config-resources.ts),
 * read-only. The empty name asks for the cluster-wide dynamic defaults: Strata has no dynamic
 * broker configs, so the list is empty, as Kafka's is when none was set. Another node id is
 * INVALID_REQUEST, as in Kafka: clients send a broker resource to the broker it names.
 *
 * Not implemented: BROKER_LOGGER resources (KIP-412; the log level is the --log-level flag)
 * are INVALID_REQUEST; documentation is always null; no config is sensitive.
 */
import {
  ErrorCode,
  type DescribeConfigsResponseDescribeConfigsResourceResult,
  type DescribeConfigsResponseDescribeConfigsResult,
  type DescribeConfigsResponseDescribeConfigsSynonym,
} from '../../wire/index.js';
import { ConfigResourceType, brokerConfigs, brokerNameOfTopicConfig, brokerResourceProblem } from '../cluster/config-resources.js';
import { ConfigSource, TOPIC_CONFIGS, topicConfigDefaults } from '../cluster/topic-configs.js';
import { topicNameProblem, type TopicInfo } from '../cluster/topic-store.js';
import { toKafkaErrorCode } from '../errors.js';
import { defineHandler } from './handler.js';

interface Described {
  name: string;
  value: string | null;
  readOnly: boolean;
  source: number;
  type: number;
  synonyms: DescribeConfigsResponseDescribeConfigsSynonym[];
}

/** One config entry for version `v`: each field only where the version carries it. */
function entry(v: number, d: Described, includeSynonyms: boolean): DescribeConfigsResponseDescribeConfigsResourceResult {
  return {
    name: d.name,
    value: d.value,
    readOnly: d.readOnly,
    isDefault: v === 0 && d.source === ConfigSource.DEFAULT_CONFIG,
    configSource: v >= 1 ? d.source : -1,
    isSensitive: false,
    synonyms: v >= 1 && includeSynonyms ? d.synonyms : [],
    configType: v >= 3 ? d.type : 0,
    documentation: null,
  };
}

export const describeConfigsHandler = defineHandler({
  apiKey: 32,
  versions: [0, 4],
  async handle(ctx, req) {
    const { services, header } = ctx;
    const v = header.apiVersion;
    const results: DescribeConfigsResponseDescribeConfigsResult[] = [];
    for (const r of req.resources) {
      const out: DescribeConfigsResponseDescribeConfigsResult = {
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        resourceType: r.resourceType,
        resourceName: r.resourceName,
        configs: [],
      };
      results.push(out);
      const fail = (errorCode: number, errorMessage: string): void => {
        out.errorCode = errorCode;
        out.errorMessage = errorMessage;
      };
      const wanted = r.configurationKeys === null ? null : new Set(r.configurationKeys);
      const include = (name: string): boolean => wanted === null || wanted.has(name);

      if (r.resourceType === ConfigResourceType.TOPIC) {
        const nameProblem = topicNameProblem(r.resourceName);
        if (nameProblem) {
          fail(ErrorCode.INVALID_TOPIC_EXCEPTION, nameProblem);
          continue;
        }
        let topic: TopicInfo | null;
        try {
          topic = await services.topics.byName(r.resourceName);
        } catch (err) {
          fail(toKafkaErrorCode(err), (err as Error).message);
          continue;
        }
        if (!topic) {
          fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic "${r.resourceName}" does not exist`);
          continue;
        }
        for (const def of TOPIC_CONFIGS.values()) {
          if (!include(def.name)) continue;
          const override = topic.configs[def.name];
          const defaults = topicConfigDefaults(def, services.config);
          const synonyms: DescribeConfigsResponseDescribeConfigsSynonym[] = [];
          if (override !== undefined) synonyms.push({ name: def.name, value: override, source: ConfigSource.TOPIC_CONFIG });
          for (const s of defaults) synonyms.push({ name: brokerNameOfTopicConfig(def.name), value: s.value, source: s.source });
          const d: Described = {
            name: def.name,
            value: override ?? defaults[0]!.value,
            readOnly: false,
            source: override !== undefined ? ConfigSource.TOPIC_CONFIG : defaults[0]!.source,
            type: def.type,
            synonyms,
          };
          out.configs.push(entry(v, d, req.includeSynonyms));
        }
      } else if (r.resourceType === ConfigResourceType.BROKER) {
        const problem = brokerResourceProblem(r.resourceName, services.nodeId, true);
        if (problem) {
          fail(ErrorCode.INVALID_REQUEST, problem);
          continue;
        }
        if (r.resourceName === '') continue;
        for (const c of brokerConfigs(services.config, services.nodeId)) {
          if (!include(c.name)) continue;
          const d: Described = { ...c, readOnly: true, synonyms: [{ name: c.name, value: c.value, source: c.source }] };
          out.configs.push(entry(v, d, req.includeSynonyms));
        }
      } else if (r.resourceType === ConfigResourceType.BROKER_LOGGER) {
        fail(ErrorCode.INVALID_REQUEST, 'Strata has no per-logger levels to describe; the broker log level is its --log-level setting');
      } else {
        fail(ErrorCode.INVALID_REQUEST, `unknown resource type ${r.resourceType}; use 2 (topic) or 4 (broker)`);
      }
    }
    return { throttleTimeMs: 0, results };
  },
});
