/**
 * Preload for a profiled broker (`node --import dist/bench/profile-hook.js dist/src/cli.js
 * broker …`): each SIGUSR2 toggles a measurement window. The first starts the V8 CPU profiler
 * (through an in-process inspector session), an event-loop delay histogram and a GC observer;
 * the next stops them and writes `$STRATA_BENCH_PROFILE_DIR/<n>.cpuprofile` and
 * `<n>.stats.json` (n = 1, 2, …; the profile is renamed into place last, so once it exists
 * both files are complete). This profiles exactly the produce or fetch window of one broker,
 * unlike `--cpu-prof`, which covers the whole process life. The broker's code is untouched.
 */
import { Session } from 'node:inspector';
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PerformanceObserver, constants, monitorEventLoopDelay, type IntervalHistogram, type PerformanceEntry } from 'node:perf_hooks';

const dir = process.env.STRATA_BENCH_PROFILE_DIR;
/** Sampling interval in microseconds (V8's default is 1000). */
const INTERVAL_US = Number(process.env.STRATA_BENCH_PROFILE_INTERVAL_US ?? 200);

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/** GC pauses and event-loop delay of one window. */
interface WindowStats {
  seconds: number;
  gc: Record<string, { count: number; totalMs: number; maxMs: number }>;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
}

if (dir) {
  const session = new Session();
  session.connect();
  let running = false;
  let busy = false;
  let written = 0;
  let started = 0;
  let delay: IntervalHistogram | null = null;
  let gc: WindowStats['gc'] = {};
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = GC_KINDS[(e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? -1] ?? 'other';
      const g = (gc[kind] ??= { count: 0, totalMs: 0, maxMs: 0 });
      g.count++;
      g.totalMs += e.duration;
      g.maxMs = Math.max(g.maxMs, e.duration);
    }
  });
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) => session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))));

  const start = async (): Promise<void> => {
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: INTERVAL_US });
    await post('Profiler.start');
    gc = {};
    observer.observe({ entryTypes: ['gc'] });
    delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    started = performance.now();
    running = true;
  };

  const stop = async (): Promise<void> => {
    const result = (await post('Profiler.stop')) as { profile: unknown };
    running = false;
    observer.disconnect();
    delay!.disable();
    const ms = (ns: number): number => ns / 1e6;
    const stats: WindowStats = {
      seconds: (performance.now() - started) / 1000,
      gc,
      eventLoopDelayMs: { p50: ms(delay!.percentile(50)), p99: ms(delay!.percentile(99)), max: ms(delay!.max) },
    };
    const file = path.join(dir, `${++written}.cpuprofile`);
    writeFileSync(path.join(dir, `${written}.stats.json`), JSON.stringify(stats));
    writeFileSync(`${file}.tmp`, JSON.stringify(result.profile));
    renameSync(`${file}.tmp`, file);
  };

  process.on('SIGUSR2', () => {
    if (busy) return;
    busy = true;
    (running ? stop() : start())
      .catch((err: unknown) => process.stderr.write(`profile hook: ${(err as Error).message}\n`))
      .finally(() => {
        busy = false;
      });
  });
}
