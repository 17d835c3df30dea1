/**
 * Offsets travel as int64 (`bigint` in the codec) and live as `number` inside the broker:
 * Strata assigns them itself and they stay far below 2^53. These helpers convert at the
 * handler boundary and refuse values a number cannot hold exactly.
 */

/** A wire int64 as a number, or null when it is outside ±2^53 (callers answer with an error). */
export function wireToNumber(value: bigint): number | null {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : null;
}

/** A broker offset as a wire int64. */
export function toWire(value: number): bigint {
  return BigInt(value);
}
