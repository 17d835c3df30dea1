/**
 * Decoder fuzzing: random and mutated frames (bit flips, truncations, overwritten lengths,
 * appended garbage) must either decode or raise WireError — never another exception, a hang
 * or a runaway allocation. Deterministic: every frame derives from a fixed seed.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { API_CODECS, Reader, WireError, Writer, decodeRequest, decodeResponse } from '../../wire/index.js';
import { encodeRequest, concatFrame } from '../../wire/index.js';
import { Rng, apis, randomMessage } from '../helpers/arbitrary.js';

/** Valid seed frames: a request (without length prefix) and a response body per API and a few versions. */
function seeds(): { request: Buffer[]; responses: { apiKey: number; version: number; frame: Buffer }[] } {
  const rng = new Rng(42);
  const request: Buffer[] = [];
  const responses: { apiKey: number; version: number; frame: Buffer }[] = [];
  for (const api of apis()) {
    const { min, max } = api.request.validVersions;
    for (const v of new Set([min, Math.floor((min + max) / 2), max])) {
      const body = randomMessage(rng, api.request, v);
      const frame = concatFrame(encodeRequest({ apiKey: api.apiKey, apiVersion: v, correlationId: 1, clientId: 'fuzz' } as never, body as never));
      request.push(frame.subarray(4));
      const w = new Writer();
      w.int32(1); // correlation id
      if (api.apiKey !== 18 && api.response.flexibleVersions && v >= api.response.flexibleVersions.min) w.uvarint(0);
      API_CODECS[api.apiKey]!.encodeResponse(w, v, randomMessage(rng, api.response, v) as never);
      responses.push({ apiKey: api.apiKey, version: v, frame: w.finishBuffer() });
    }
  }
  return { request, responses };
}

/** Request frames captured from real clients (test/fixtures/golden), as extra seeds. */
function goldenRequests(): Buffer[] {
  const root = path.join(import.meta.dirname, '..', 'fixtures', 'golden');
  const frames: Buffer[] = [];
  for (const client of readdirSync(root, { withFileTypes: true })) {
    if (!client.isDirectory()) continue;
    for (const f of readdirSync(path.join(root, client.name))) {
      if (f.endsWith('.bin') && !f.endsWith('.response.bin')) frames.push(readFileSync(path.join(root, client.name, f)));
    }
  }
  return frames;
}

function mutate(rng: Rng, src: Buffer): Buffer {
  const b = Buffer.from(src);
  switch (rng.int(0, 5)) {
    case 0: {
      // Flip a few bits.
      const flips = rng.int(1, 4);
      for (let i = 0; i < flips && b.length > 0; i++) b[rng.int(0, b.length - 1)]! ^= 1 << rng.int(0, 7);
      return b;
    }
    case 1:
      // Truncate.
      return b.subarray(0, rng.int(0, b.length));
    case 2: {
      // Overwrite four bytes with a huge or negative length.
      if (b.length >= 4) b.writeInt32BE(rng.pick([0x7fffffff, -2, -1, 0x40000000, 65535]), rng.int(0, b.length - 4));
      return b;
    }
    case 3: {
      // Overwrite a byte with a varint continuation pattern (long varints).
      if (b.length > 0) b.fill(0xff, rng.int(0, b.length - 1), Math.min(b.length, rng.int(0, b.length) + 6));
      return b;
    }
    case 4:
      // Append garbage.
      return Buffer.concat([b, rng.bytes(rng.int(1, 16))]);
    default:
      // Pure random bytes, keeping the header's key/version plausible half the time.
      if (rng.bool()) return rng.bytes(rng.int(0, 64));
      return Buffer.concat([b.subarray(0, 4), rng.bytes(rng.int(0, 64))]);
  }
}

function expectOnlyWireError(fn: () => unknown, frame: Buffer): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof WireError)) {
      throw new Error(`non-WireError ${String(err)} for frame ${frame.toString('hex').slice(0, 400)}`, { cause: err });
    }
  }
}

describe('decoder fuzzing', () => {
  const { request: generated, responses } = seeds();
  const golden = goldenRequests();
  const request = [...generated, ...golden];

  it('decodes every unmutated seed, generated and captured', () => {
    expect(golden.length).toBeGreaterThan(100);
    for (const f of request) expect(() => decodeRequest(f)).not.toThrow();
  });

  it('60k mutated request frames decode or raise WireError', () => {
    const rng = new Rng(7);
    let decoded = 0;
    let rejected = 0;
    for (let i = 0; i < 60_000; i++) {
      const frame = mutate(rng, rng.pick(request));
      try {
        decodeRequest(frame);
        decoded++;
      } catch (err) {
        if (!(err instanceof WireError)) {
          throw new Error(`non-WireError for frame ${frame.toString('hex').slice(0, 400)}`, { cause: err });
        }
        rejected++;
      }
    }
    expect(decoded + rejected).toBe(60_000);
    // Both outcomes must occur, or the mutations are not exercising the decoder.
    expect(decoded).toBeGreaterThan(1000);
    expect(rejected).toBeGreaterThan(1000);
  });

  it('40k mutated response bodies decode or raise WireError', () => {
    const rng = new Rng(8);
    for (let i = 0; i < 40_000; i++) {
      const seed = rng.pick(responses);
      const frame = mutate(rng, seed.frame);
      expectOnlyWireError(() => decodeResponse(frame, seed.apiKey as never, seed.version), frame);
    }
  });

  it('rejects a huge array count without allocating for it', () => {
    // Metadata v0 request: topics array with count 0x7fffffff and nothing after it.
    const frame = Buffer.from('00030000000000010000' + '7fffffff', 'hex');
    const before = process.memoryUsage().arrayBuffers;
    expect(() => decodeRequest(frame)).toThrow(/array length 2147483647 exceeds the 0 bytes left/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1024 * 1024);
  });

  it('rejects a string length past the frame', () => {
    // ApiVersions v1 header with a client id claiming 32767 bytes.
    const frame = Buffer.from('0012000100000001' + '7fff' + '41', 'hex');
    expect(() => decodeRequest(frame)).toThrow(WireError);
  });

  it('rejects an over-long varint', () => {
    const r = new Reader(Buffer.from('ffffffffff01', 'hex'));
    expect(() => r.uvarint()).toThrow(/longer than 5 bytes/);
  });

  it('reports unknown API keys and versions with their own error classes', () => {
    expect(() => decodeRequest(Buffer.from('03e8000000000001ffff', 'hex'))).toThrow(/unknown API key 1000/);
    expect(() => decodeRequest(Buffer.from('0012006300000001ffff', 'hex'))).toThrow(/version 99 is outside 0-4/);
  });
});
