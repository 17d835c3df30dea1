/**
 * Test helper: the harness's raw Kafka client (src/harness/wire-client.ts) under the name the
 * tests use, for exact control of what is sent (duplicate produce, bad frames) and exact views
 * of responses.
 */
export { WireClient as RawClient } from '../../src/harness/wire-client.js';
