/**
 * Connection limits of one broker: at most `maxConnections` client connections in all and
 * `maxConnectionsPerIp` from one address (Kafka's `max.connections` and
 * `max.connections.per.ip`). A connection over either is closed as it is accepted.
 *
 * Kafka also closes a connection over the per-IP limit, but holds one over the broker-wide
 * limit in its accept queue until a slot frees (KIP-402). Node accepts before it can be
 * asked, so here both are closed at once; clients reconnect with backoff either way.
 */
import type { Logger } from '../observability/logger.js';

/** Which limit refused a connection. */
export type ConnectionRefusal = 'max.connections' | 'max.connections.per.ip';

/** At most one refusal line per this long; the next one carries how many went unlogged. */
const LOG_INTERVAL_MS = 1000;

/** Counts open connections per broker and per client address. */
export class ConnectionLimits {
  readonly #max: number;
  readonly #maxPerIp: number;
  readonly #perIp = new Map<string, number>();
  #open = 0;
  #refused = 0;
  #lastLogAt = -Infinity;
  #unlogged = 0;

  constructor(maxConnections: number, maxConnectionsPerIp: number) {
    this.#max = maxConnections;
    this.#maxPerIp = maxConnectionsPerIp;
  }

  /** Connections open now. */
  get open(): number {
    return this.#open;
  }

  /** Connections refused since start. */
  get refused(): number {
    return this.#refused;
  }

  /**
   * Counts a new connection from `ip`, or returns the limit it would break (and counts
   * nothing). Every accepted connection must be given back with {@link closed}.
   */
  tryOpen(ip: string): ConnectionRefusal | null {
    const fromIp = this.#perIp.get(ip) ?? 0;
    let refusal: ConnectionRefusal | null = null;
    if (fromIp >= this.#maxPerIp) refusal = 'max.connections.per.ip';
    else if (this.#open >= this.#max) refusal = 'max.connections';
    if (refusal !== null) {
      this.#refused++;
      return refusal;
    }
    this.#perIp.set(ip, fromIp + 1);
    this.#open++;
    return null;
  }

  /** Gives back a connection counted by {@link tryOpen}. */
  closed(ip: string): void {
    const fromIp = this.#perIp.get(ip) ?? 0;
    if (fromIp <= 1) this.#perIp.delete(ip);
    else this.#perIp.set(ip, fromIp - 1);
    this.#open--;
  }

  /**
   * Logs a refusal: one line, or none when one was logged less than a second ago, so that a
   * client reconnecting in a loop cannot flood the log (the next line counts the skipped).
   */
  logRefusal(log: Logger, ip: string, refusal: ConnectionRefusal, now = Date.now()): void {
    if (now - this.#lastLogAt < LOG_INTERVAL_MS) {
      this.#unlogged++;
      return;
    }
    this.#lastLogAt = now;
    const perIp = refusal === 'max.connections.per.ip';
    log.warn(
      {
        remote: ip,
        limit: refusal,
        max: perIp ? this.#maxPerIp : this.#max,
        open: perIp ? (this.#perIp.get(ip) ?? 0) : this.#open,
        alsoRefusedSinceLastLine: this.#unlogged,
      },
      perIp
        ? 'too many connections from one address; closed the new one (raise --max-connections-per-ip if this client needs them)'
        : 'too many connections to this broker; closed the new one (raise --max-connections, or add brokers)',
    );
    this.#unlogged = 0;
  }
}
