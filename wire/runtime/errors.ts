/**
 * WireError is the only exception the codec raises for malformed input: a frame that is
 * truncated, carries an impossible length, or breaks a protocol rule. Callers close the
 * connection (or fail the partition, for record batches) when they catch it.
 */
export class WireError extends Error {
  override readonly name = 'WireError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A request for an API key the definitions do not have. */
export class UnknownApiKeyError extends WireError {
  constructor(readonly apiKey: number) {
    super(`unknown API key ${apiKey}`);
  }
}

/** A request or response version outside the range the definitions give for its API key. */
export class UnsupportedVersionError extends WireError {
  constructor(
    readonly apiKey: number,
    readonly apiVersion: number,
    readonly minVersion: number,
    readonly maxVersion: number,
  ) {
    super(`API key ${apiKey} version ${apiVersion} is outside ${minVersion}-${maxVersion}`);
  }
}

/**
 * EncodeError is raised when a caller asks the codec to encode something the chosen version
 * cannot carry (a non-default value in a field the version lacks, a string over 32767 bytes).
 * It is a programming error on the sending side, never a consequence of peer input.
 */
export class EncodeError extends Error {
  override readonly name = 'EncodeError';
}
