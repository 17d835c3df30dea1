/**
 * ApiVersions (key 18), versions 0–4.
 *
 * v1 adds throttleTimeMs; v3 (KIP-511) is flexible and carries the client's software name and
 * version; v3+ may list supported/finalized features (KIP-584): Strata has none to report.
 * The response header is always v0 (see wire/runtime/header.ts). An ApiVersions request of a
 * version Strata does not know is answered by the connection with a v0 UNSUPPORTED_VERSION
 * response listing the supported ranges.
 *
 * The advertised list is computed from the handler registry, so nothing is advertised that
 * is not implemented.
 */
import { ErrorCode, type ApiVersionsResponseApiVersion } from '../../wire/index.js';
import { defineHandler } from './handler.js';
import type { ServedApi } from './services.js';

/** The ApiVersions list for a handler table, in API key order. */
export function apiVersionsKeys(handlers: ReadonlyMap<number, ServedApi>): ApiVersionsResponseApiVersion[] {
  return [...handlers.values()]
    .sort((a, b) => a.apiKey - b.apiKey)
    .map((h) => {
      const [minVersion, maxVersion] = h.advertised ?? h.versions;
      return { apiKey: h.apiKey, minVersion, maxVersion };
    });
}

export const apiVersionsHandler = defineHandler({
  apiKey: 18,
  versions: [0, 4],
  handle(ctx) {
    return {
      errorCode: ErrorCode.NONE,
      apiKeys: apiVersionsKeys(ctx.services.apis),
      throttleTimeMs: 0,
      supportedFeatures: [],
      finalizedFeaturesEpoch: -1n,
      finalizedFeatures: [],
      zkMigrationReady: false,
    };
  },
});
