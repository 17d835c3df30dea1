/**
 * Test helper: a private `redis-server` on a free 127.0.0.1 port, from the harness
 * (src/harness/redis-server.ts), under the names the tests use.
 */
export { freePort } from '../../src/harness/ports.js';
export { startRedisServer as startRedis, type RedisServer, type StartRedisOptions, type StopSignal } from '../../src/harness/redis-server.js';
