/**
 * Random message values for property tests, built from the same definition model the codec
 * generator reads. Fields a version does not carry get their defaults (computed here
 * independently of the generator, so a wrong default in generated code shows up as a
 * round-trip difference).
 */
import { resolve } from 'node:path';
import {
  intersect,
  loadApis,
  loadData,
  type ApiModel,
  type FieldModel,
  type MessageModel,
  type Primitive,
  type StructModel,
  type VersionRange,
} from '../../wire/codegen/schema.js';
import { Rng } from './rng.js';

export { Rng };

export const DEFINITIONS = resolve(import.meta.dirname, '..', '..', 'wire', 'definitions', 'messages');

let cachedApis: ApiModel[] | undefined;
export function apis(): ApiModel[] {
  cachedApis ??= loadApis(DEFINITIONS);
  return cachedApis;
}

export function dataSchema(name: string): MessageModel {
  return loadData(DEFINITIONS, name);
}

const inRange = (r: VersionRange | null, v: number): boolean => r !== null && v >= r.min && v <= r.max;

function defaultPrimitive(f: FieldModel, name: Primitive): unknown {
  const raw = f.defaultRaw;
  switch (name) {
    case 'bool':
      return raw === 'true';
    case 'int64':
      return raw === undefined || raw === '' ? 0n : BigInt(raw);
    case 'string':
      return raw === 'null' ? null : (raw ?? '');
    case 'uuid':
      return 'AAAAAAAAAAAAAAAAAAAAAA';
    case 'bytes':
      return raw === 'null' ? null : Buffer.alloc(0);
    case 'records':
      return raw === 'null' || f.nullableVersions !== null ? null : Buffer.alloc(0);
    default:
      return raw === undefined || raw === '' ? 0 : Number(raw);
  }
}

/** The value a decoder produces for a field the version does not carry. */
export function defaultValue(f: FieldModel): unknown {
  const t = f.type;
  if (t.kind === 'array') return f.defaultRaw === 'null' ? null : [];
  if (t.kind === 'struct') {
    return f.defaultRaw === 'null' && f.nullableVersions !== null ? null : defaultStruct(t.struct);
  }
  return defaultPrimitive(f, t.name);
}

function defaultStruct(s: StructModel): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const f of s.fields) o[f.prop] = defaultValue(f);
  return o;
}

const STRINGS = ['', 'a', 'topic-1', 'groupé', '日本語', 'x'.repeat(40), '🙂 emoji'];

function randomPrimitive(rng: Rng, name: Primitive): unknown {
  switch (name) {
    case 'bool':
      return rng.bool();
    case 'int8':
      return rng.int(-128, 127);
    case 'int16':
      return rng.int(-32768, 32767);
    case 'uint16':
      return rng.int(0, 65535);
    case 'int32':
      return rng.pick([0, -1, 1, 2147483647, -2147483648, rng.int(-1e9, 1e9)]);
    case 'uint32':
      return rng.pick([0, 1, 4294967295, rng.int(0, 4e9)]);
    case 'int64':
      return rng.pick([0n, -1n, 9223372036854775807n, -9223372036854775808n, BigInt(rng.int(-1e9, 1e9)) * 1000003n]);
    case 'float64':
      return rng.pick([0, 1.5, -2.25, 1e300, rng.next()]);
    case 'string':
      return rng.pick(STRINGS);
    case 'uuid':
      return rng.bytes(16).toString('base64url');
    case 'bytes':
    case 'records':
      return rng.bytes(rng.pick([0, 1, 7, 300]));
  }
}

/** A random value for a field present in version `v`. */
function randomField(rng: Rng, f: FieldModel, v: number, depth: number): unknown {
  if (inRange(f.nullableVersions, v) && rng.bool(0.2)) return null;
  const t = f.type;
  if (t.kind === 'primitive') return randomPrimitive(rng, t.name);
  if (t.kind === 'struct') return randomStruct(rng, t.struct, v, depth + 1);
  const n = depth > 3 ? rng.int(0, 1) : rng.int(0, 3);
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) {
    out.push(t.element.kind === 'primitive' ? randomPrimitive(rng, t.element.name) : randomStruct(rng, t.element.struct, v, depth + 1));
  }
  return out;
}

/**
 * A random struct value for version `v`: present fields random, absent ones default; in
 * flexible versions, sometimes unknown tagged fields (with tags above any known one).
 */
export function randomStruct(rng: Rng, s: StructModel, v: number, depth = 0, flexible?: (v: number) => boolean): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const f of s.fields) {
    const present = inRange(f.versions, v) && (f.taggedVersions === null || inRange(f.taggedVersions, v));
    if (!present) o[f.prop] = defaultValue(f);
    else if (f.taggedVersions !== null && rng.bool(0.3)) o[f.prop] = defaultValue(f);
    else o[f.prop] = randomField(rng, f, v, depth);
  }
  if (flexible?.(v) && rng.bool(0.25)) {
    const n = rng.int(1, 2);
    const fields = [];
    for (let i = 0; i < n; i++) fields.push({ tag: 1000 + i * rng.int(1, 50), data: rng.bytes(rng.int(0, 5)) });
    o.unknownTaggedFields = fields;
  }
  return o;
}

/** A random top-level message body for version `v`. */
export function randomMessage(rng: Rng, msg: MessageModel, v: number): Record<string, unknown> {
  const flex = (ver: number): boolean => inRange(msg.flexibleVersions, ver);
  return randomStructDeep(rng, msg.root, v, 0, flex);
}

/** Like randomStruct, but nested structs may also get unknown tagged fields. */
function randomStructDeep(rng: Rng, s: StructModel, v: number, depth: number, flex: (v: number) => boolean): Record<string, unknown> {
  const o = randomStruct(rng, s, v, depth, flex);
  for (const f of s.fields) {
    const value = o[f.prop];
    if (value === null || value === undefined) continue;
    const t = f.type;
    if (t.kind === 'struct' && isFullyRandom(f, v)) {
      o[f.prop] = { ...(value as object), ...maybeUnknown(rng, flex(v)) };
    } else if (t.kind === 'array' && t.element.kind === 'struct') {
      for (const e of value as Record<string, unknown>[]) Object.assign(e, maybeUnknown(rng, flex(v)));
    }
  }
  return o;
}

function isFullyRandom(f: FieldModel, v: number): boolean {
  return inRange(intersect(f.versions, f.taggedVersions ?? f.versions), v);
}

function maybeUnknown(rng: Rng, flexible: boolean): Record<string, unknown> {
  if (!flexible || !rng.bool(0.2)) return {};
  return { unknownTaggedFields: [{ tag: 2000 + rng.int(0, 9), data: rng.bytes(rng.int(0, 4)) }] };
}

export function versionsOf(m: MessageModel): number[] {
  const out: number[] = [];
  for (let v = m.validVersions.min; v <= m.validVersions.max; v++) out.push(v);
  return out;
}
