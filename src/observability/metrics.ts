/**
 * The broker's counters in the Prometheus text format (served on /metrics by admin-http.ts).
 * Each source is read when scraped; nothing is kept between scrapes.
 */
import type { ObjectGcStats } from '../log/object-gc.js';
import type { ObjectCompactionStats } from '../log/object-compaction.js';
import type { LogCleanerStats } from '../log/log-cleaner.js';
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
  compaction(): ObjectCompactionStats;
  logCleaner(): LogCleanerStats;
  objectGc(): ObjectGcStats;
  /** Object-store requests of each background job (object GC, compaction, the log cleaner). */
  jobStores(): Record<string, ObjectStoreStats>;
}

export function metricsText(sources: MetricSources): string {
  const store = sources.store();
  const log = sources.log();
  const conns = sources.connections();
  const memory = sources.requestMemory();
  const retention = sources.retention();
  const compaction = sources.compaction();
  const cleaner = sources.logCleaner();
  const gc = sources.objectGc();
  const cpu = process.cpuUsage();
  const lines: [string, string, number][] = [
    ['strata_object_store_puts_total', 'counter', store.puts],
    ['strata_object_store_gets_total', 'counter', store.gets],
    ['strata_object_store_heads_total', 'counter', store.heads],
    ['strata_object_store_lists_total', 'counter', store.lists],
    ['strata_object_store_deletes_total', 'counter', store.deletes],
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
    ['strata_retention_cycles_total', 'counter', retention.cycles],
    ['strata_retention_log_start_advances_total', 'counter', retention.logStartAdvances],
    ['strata_compaction_cycles_total', 'counter', compaction.cycles],
    ['strata_compaction_objects_written_total', 'counter', compaction.objectsWritten],
    ['strata_compaction_bytes_rewritten_total', 'counter', compaction.bytesRewritten],
    ['strata_compaction_runs_merged_total', 'counter', compaction.runsMerged],
    ['strata_compaction_swaps_aborted_total', 'counter', compaction.swapsAborted],
    ['strata_compaction_backlog_runs', 'gauge', compaction.backlogRuns],
    ['strata_log_cleaner_cycles_total', 'counter', cleaner.cycles],
    ['strata_log_cleaner_records_removed_total', 'counter', cleaner.recordsRemoved],
    ['strata_log_cleaner_bytes_reclaimed_total', 'counter', cleaner.bytesReclaimed],
    ['strata_log_cleaner_swaps_aborted_total', 'counter', cleaner.swapsAborted],
    ['strata_object_gc_cycles_total', 'counter', gc.cycles],
    ['strata_object_gc_deleted_objects_total', 'counter', gc.deletedObjects],
    ['strata_object_gc_deleted_bytes_total', 'counter', gc.deletedBytes],
    ['process_cpu_seconds_total', 'counter', (cpu.user + cpu.system) / 1e6],
    ['process_resident_memory_bytes', 'gauge', process.memoryUsage().rss],
  ];
  return lines.map(([name, type, value]) => `# TYPE ${name} ${type}\n${name} ${value}\n`).join('') + jobStoreCounters(sources.jobStores()) + objectGcGauges(gc);
}

/** Each background job's object-store requests by kind, labelled by job and request. */
function jobStoreCounters(jobs: Record<string, ObjectStoreStats>): string {
  const ops: [string, keyof ObjectStoreStats][] = [['put', 'puts'], ['get', 'gets'], ['head', 'heads'], ['list', 'lists'], ['delete', 'deletes']];
  let text = '# TYPE strata_job_object_store_requests_total counter\n';
  for (const [job, stats] of Object.entries(jobs)) {
    for (const [op, field] of ops) text += `strata_job_object_store_requests_total{job="${labelValue(job)}",op="${op}"} ${stats[field]}\n`;
  }
  return text;
}

/**
 * The gauges of the last object GC cycle, only on the broker that ran it (while another broker
 * runs the job, this one shows none, so a sum over brokers counts each object once).
 */
function objectGcGauges(gc: ObjectGcStats): string {
  const last = gc.last;
  if (last === null) return '';
  let text =
    `# TYPE strata_objects_live gauge\nstrata_objects_live ${last.liveObjects}\n` +
    `# TYPE strata_objects_live_bytes gauge\nstrata_objects_live_bytes ${last.liveBytes}\n` +
    `# TYPE strata_object_gc_pending_objects gauge\nstrata_object_gc_pending_objects ${last.pendingObjects}\n` +
    '# TYPE strata_topic_stored_bytes gauge\n';
  for (const t of last.topics) text += `strata_topic_stored_bytes{topic="${labelValue(t.name)}"} ${t.storedBytes}\n`;
  return text;
}

/** A label value escaped as the text format requires (topic names never need it, but be exact). */
function labelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
