/**
 * Loads Kafka's JSON message definitions and turns them into a typed model the emitter walks:
 * version ranges parsed, common structs resolved, every struct named and given the version
 * range in which it can appear.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import JSON5 from 'json5';

/** An inclusive version range; `max` is Infinity for open ranges ("3+"). */
export interface VersionRange {
  min: number;
  max: number;
}

export const PRIMITIVES = [
  'bool',
  'int8',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'float64',
  'string',
  'uuid',
  'bytes',
  'records',
] as const;
export type Primitive = (typeof PRIMITIVES)[number];

/** A field's type: a primitive, a struct, or an array of either. */
export type FieldType =
  | { kind: 'primitive'; name: Primitive }
  | { kind: 'struct'; struct: StructModel }
  | { kind: 'array'; element: { kind: 'primitive'; name: Primitive } | { kind: 'struct'; struct: StructModel } };

export interface FieldModel {
  /** Kafka's name, e.g. GroupInstanceId. */
  name: string;
  /** camelCased property name, e.g. groupInstanceId. */
  prop: string;
  type: FieldType;
  versions: VersionRange | null;
  nullableVersions: VersionRange | null;
  taggedVersions: VersionRange | null;
  tag: number | null;
  /** The raw `default` string of the definition, if any. */
  defaultRaw: string | undefined;
  ignorable: boolean;
  zeroCopy: boolean;
  entityType: string | undefined;
  mapKey: boolean;
}

export interface StructModel {
  /** Generated TypeScript name, unique within the file. */
  tsName: string;
  /** Kafka's struct name. */
  kafkaName: string;
  fields: FieldModel[];
  /** Versions in which this struct can be reached (hull over every referencing field). */
  reach: VersionRange;
}

export interface MessageModel {
  name: string;
  apiKey: number | null;
  type: 'request' | 'response' | 'data' | 'header';
  validVersions: VersionRange;
  flexibleVersions: VersionRange | null;
  deprecatedVersions: VersionRange | null;
  latestVersionUnstable: boolean;
  root: StructModel;
  /** Every struct of the message, the root first, nested ones in definition order. */
  structs: StructModel[];
}

interface RawField {
  name: string;
  type: string;
  versions?: string;
  nullableVersions?: string;
  taggedVersions?: string;
  tag?: number;
  default?: string | number | boolean;
  ignorable?: boolean;
  zeroCopy?: boolean;
  entityType?: string;
  mapKey?: boolean;
  fields?: RawField[];
  flexibleVersions?: string;
}

interface RawMessage {
  apiKey?: number;
  type: 'request' | 'response' | 'data' | 'header';
  name: string;
  validVersions: string;
  flexibleVersions: string;
  deprecatedVersions?: string;
  latestVersionUnstable?: boolean;
  fields: RawField[];
  commonStructs?: { name: string; versions?: string; fields: RawField[] }[];
}

/** Parses "0+", "3-7", "5" or "none". */
export function parseVersions(text: string | undefined): VersionRange | null {
  if (text === undefined || text === 'none' || text === '') return null;
  let m = /^(\d+)\+$/.exec(text);
  if (m) return { min: Number(m[1]), max: Infinity };
  m = /^(\d+)-(\d+)$/.exec(text);
  if (m) return { min: Number(m[1]), max: Number(m[2]) };
  m = /^(\d+)$/.exec(text);
  if (m) return { min: Number(m[1]), max: Number(m[1]) };
  throw new Error(`unparseable version range "${text}"`);
}

export function intersect(a: VersionRange | null, b: VersionRange | null): VersionRange | null {
  if (a === null || b === null) return null;
  const min = Math.max(a.min, b.min);
  const max = Math.min(a.max, b.max);
  return min <= max ? { min, max } : null;
}

function hull(a: VersionRange | null, b: VersionRange): VersionRange {
  if (a === null) return { ...b };
  return { min: Math.min(a.min, b.min), max: Math.max(a.max, b.max) };
}

export function camel(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

/** Reads one definition file (JSON with comments). */
export function loadRawMessage(path: string): RawMessage {
  return JSON5.parse(readFileSync(path, 'utf8')) as RawMessage;
}

/** Builds the model of one message. */
export function buildMessage(raw: RawMessage): MessageModel {
  const validVersions = parseVersions(raw.validVersions);
  if (validVersions === null) throw new Error(`${raw.name}: no valid versions`);
  const structs: StructModel[] = [];
  const byKafkaName = new Map<string, StructModel>();
  const common = new Map<string, RawField[]>();
  for (const c of raw.commonStructs ?? []) common.set(c.name, c.fields);
  const pending: { struct: StructModel; rawFields: RawField[] }[] = [];

  const structFor = (kafkaName: string, rawFields: RawField[] | undefined, reach: VersionRange): StructModel => {
    let s = byKafkaName.get(kafkaName);
    if (s) {
      s.reach = hull(s.reach, reach);
      if (rawFields && !common.has(kafkaName)) throw new Error(`${raw.name}: struct ${kafkaName} defined twice`);
      return s;
    }
    const fields = rawFields ?? common.get(kafkaName);
    if (!fields) throw new Error(`${raw.name}: unknown struct type ${kafkaName}`);
    // Kafka often names nested structs after their message already (MetadataResponseTopic);
    // only prefix the ones that are not, so names stay unique per file without stuttering.
    const tsName = kafkaName.startsWith(raw.name) ? kafkaName : raw.name + kafkaName;
    s = { tsName, kafkaName, fields: [], reach: { ...reach } };
    byKafkaName.set(kafkaName, s);
    structs.push(s);
    pending.push({ struct: s, rawFields: fields });
    return s;
  };

  const root: StructModel = { tsName: raw.name, kafkaName: raw.name, fields: [], reach: validVersions };
  structs.push(root);
  pending.push({ struct: root, rawFields: raw.fields });

  // Breadth-first so that a struct's reach is final before its own fields are resolved: a
  // common struct referenced from two places gets the hull of both.
  for (let i = 0; i < pending.length; i++) {
    const { struct, rawFields } = pending[i]!;
    const seen = new Set<string>();
    for (const rf of rawFields) {
      const prop = camel(rf.name);
      if (seen.has(prop)) throw new Error(`${raw.name}.${struct.kafkaName}: duplicate field ${rf.name}`);
      seen.add(prop);
      const versions = intersect(parseVersions(rf.versions), validVersions);
      const reach = intersect(versions, struct.reach) ?? struct.reach;
      let type: FieldType;
      const isArray = rf.type.startsWith('[]');
      const base = isArray ? rf.type.slice(2) : rf.type;
      if ((PRIMITIVES as readonly string[]).includes(base)) {
        const prim = { kind: 'primitive' as const, name: base as Primitive };
        type = isArray ? { kind: 'array', element: prim } : prim;
      } else {
        const st = { kind: 'struct' as const, struct: structFor(base, rf.fields, reach) };
        type = isArray ? { kind: 'array', element: st } : st;
      }
      const taggedVersions = parseVersions(rf.taggedVersions);
      struct.fields.push({
        name: rf.name,
        prop,
        type,
        versions,
        nullableVersions: intersect(parseVersions(rf.nullableVersions), versions),
        taggedVersions: intersect(taggedVersions, versions),
        tag: rf.tag ?? null,
        defaultRaw: rf.default === undefined ? undefined : String(rf.default),
        ignorable: rf.ignorable === true,
        zeroCopy: rf.zeroCopy === true,
        entityType: rf.entityType,
        mapKey: rf.mapKey === true,
      });
    }
  }

  recomputeReach(root, structs);

  return {
    name: raw.name,
    apiKey: raw.apiKey ?? null,
    type: raw.type,
    validVersions,
    flexibleVersions: parseVersions(raw.flexibleVersions),
    deprecatedVersions: parseVersions(raw.deprecatedVersions),
    latestVersionUnstable: raw.latestVersionUnstable === true,
    root,
    structs,
  };
}

/**
 * Recomputes every struct's reach from the root down until nothing changes, so a common struct
 * referenced from several places (in any order) gets the hull of all of them.
 */
function recomputeReach(root: StructModel, structs: StructModel[]): void {
  const reach = new Map<StructModel, VersionRange | null>();
  for (const s of structs) reach.set(s, s === root ? root.reach : null);
  for (let changed = true; changed; ) {
    changed = false;
    for (const s of structs) {
      const parentReach = reach.get(s);
      if (!parentReach) continue;
      for (const f of s.fields) {
        const child = f.type.kind === 'struct' ? f.type.struct : f.type.kind === 'array' && f.type.element.kind === 'struct' ? f.type.element.struct : null;
        const r = intersect(f.versions, parentReach);
        if (!child || !r) continue;
        const before = reach.get(child) ?? null;
        const after = hull(before, r);
        if (!before || before.min !== after.min || before.max !== after.max) {
          reach.set(child, after);
          changed = true;
        }
      }
    }
  }
  for (const s of structs) s.reach = reach.get(s) ?? s.reach;
}

/** A request/response pair sharing one API key. */
export interface ApiModel {
  apiKey: number;
  /** API name without the Request/Response suffix, e.g. "Fetch". */
  name: string;
  request: MessageModel;
  response: MessageModel;
}

/** Loads every API from a definitions folder, sorted by key. */
export function loadApis(dir: string): ApiModel[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('Request.json'));
  const apis: ApiModel[] = [];
  for (const file of files) {
    const request = buildMessage(loadRawMessage(join(dir, file)));
    const response = buildMessage(loadRawMessage(join(dir, file.replace(/Request\.json$/, 'Response.json'))));
    if (request.apiKey === null || request.apiKey !== response.apiKey) {
      throw new Error(`${file}: request and response api keys differ`);
    }
    apis.push({ apiKey: request.apiKey, name: request.name.replace(/Request$/, ''), request, response });
  }
  apis.sort((a, b) => a.apiKey - b.apiKey);
  return apis;
}

/** Loads one `data` message (e.g. ConsumerProtocolAssignment). */
export function loadData(dir: string, name: string): MessageModel {
  return buildMessage(loadRawMessage(join(dir, `${name}.json`)));
}
