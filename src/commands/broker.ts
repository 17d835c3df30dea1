/**
 * `strata broker`: runs one production broker until SIGTERM/SIGINT, then drains and exits 0.
 */
import { Broker } from '../broker.js';
import { ConfigError, brokerOptionsHelp, parseBrokerConfig } from '../config.js';
import { createLogger } from '../observability/logger.js';

/**
 * The V8 heap settings brokers run with where Strata starts the process itself (`strata dev`,
 * the benchmark); a deployment should pass them too (`node <flags> dist/src/cli.js broker`).
 * With V8's defaults a broker taking 100 MB/s of produce ran ~12 full collections a second,
 * with the old generation at only ~16 MB live. A 4 MB semi-space and a 128 MB initial
 * old-generation limit cut that to ~1.5 a second and broker CPU by ~20%, and produce p99
 * from 28–31 to 24–26 ms (file store, `flush.ms` 5); saturated produce rose 3–5%.
 */
export const BROKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--initial-old-space-size=128'];

/** What the CLI needs to print; kept narrow so this module does not import cli.ts. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
}

export async function runBroker(args: readonly string[], output: Output, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    output.out('Usage: strata broker --redis URL --storage URL [options]');
    output.out('');
    output.out('Every option can also be set with the environment variable shown beside it.');
    for (const line of brokerOptionsHelp()) output.out(line);
    return 0;
  }
  let config;
  try {
    config = parseBrokerConfig(args, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const line of err.message.split('\n')) output.err(`strata broker: ${line}`);
      return 2;
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  const broker = new Broker(config, log);
  try {
    await broker.start();
  } catch (err) {
    output.err(`strata broker: could not start: ${(err as Error).message}`);
    await broker.stop().catch(() => undefined);
    return 1;
  }
  await new Promise<void>((resolve) => {
    let received = false;
    // The listener stays installed: a second signal (Ctrl-C reaches the whole process group,
    // and a supervisor may send SIGTERM too) must not kill the process in the middle of its drain.
    const onSignal = (signal: string): void => {
      log.info({ signal }, received ? 'signal received while draining; still draining' : 'signal received');
      if (received) return;
      received = true;
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await broker.stop();
  return 0;
}
