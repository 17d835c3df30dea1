/**
 * `strata broker`: runs one production broker until SIGTERM/SIGINT, then drains and exits 0.
 */
import { Broker } from '../broker.js';
import { ConfigError, brokerOptionsHelp, parseBrokerConfig } from '../config.js';
import { createLogger } from '../observability/logger.js';

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
