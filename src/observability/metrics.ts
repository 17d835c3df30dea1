/**
 * The broker's counters in the Prometheus text format (served on /metrics by admin-http.ts).
 * Each source is read when scraped; nothing is kept between scrapes.
 */
import type { PartitionLogStats } from '../log/partition-log.js';
import type { RetentionStats } from '../log/retention.js';
import type { ObjectStoreStats } from '../storage/object-store.js';

/** What the metrics are read from, at scrape time. */
export interface MetricSources {
  store(): ObjectStoreStats;
  log(): PartitionLogStats;
  connections(): { open: number; refused: number };
  requestMemory(): { inUse: number; capacity: number; waiting: number };
  groupsOwned(): number;
  retention(): RetentionStats;
}

export function metricsText(sources: MetricSources): string {
  const store = sources.store();
  const log = sources.log();
  const conns = sources.connections();
  const memory = sources.requestMemory();
  const retention = sources.retention();
  const cpu = process.cpuUsage();
  const lines: [string, string, number][] = [
    ['strata_object_store_puts_total', 'counter', store.puts],
    ['strata_object_store_gets_total', 'counter', store.gets],
    ['strata_object_store_bytes_written_total', 'counter', store.bytesWritten],
    ['strata_object_store_bytes_read_total', 'counter', store.bytesRead],
    ['strata_object_store_retries_total', 'counter', store.retries],
    ['strata_object_store_errors_total', 'counter', store.errors],
    ['strata_segments_flushed_total', 'counter', log.segmentsFlushed],
    ['strata_ingest_pending_bytes', 'gauge', log.ingestPendingBytes],
    ['strata_write_cache_bytes', 'gauge', log.writeCache.bytes],
    ['strata_block_cache_bytes', 'gauge', log.blockCache.bytes],
    ['strata_block_cache_hits_total', 'counter', log.blockCache.hits],
    ['strata_block_cache_misses_total', 'counter', log.blockCache.misses],
    ['strata_connections', 'gauge', conns.open],
    ['strata_connections_refused_total', 'counter', conns.refused],
    ['strata_request_memory_bytes', 'gauge', memory.inUse],
    ['strata_request_memory_limit_bytes', 'gauge', memory.capacity],
    ['strata_request_memory_waiting_connections', 'gauge', memory.waiting],
    ['strata_groups_owned', 'gauge', sources.groupsOwned()],
    ['strata_retention_runs_total', 'counter', retention.cycles],
    ['strata_retention_log_start_advances_total', 'counter', retention.logStartAdvances],
    ['process_cpu_seconds_total', 'counter', (cpu.user + cpu.system) / 1e6],
    ['process_resident_memory_bytes', 'gauge', process.memoryUsage().rss],
  ];
  return lines.map(([name, type, value]) => `# TYPE ${name} ${type}\n${name} ${value}\n`).join('');
}
