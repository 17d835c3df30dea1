import type { Reader } from './reader.js';
import { writeUnknownTaggedField, type TaggedField } from './tagged.js';
import type { Writer } from './writer.js';

/** The request header every Kafka request starts with (versions 0–2). */
export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  /** Absent (null) in header v0 and when the client sends a null id. */
  clientId: string | null;
  /** Header v2 tagged fields; none are defined today, kept for re-encoding. */
  unknownTaggedFields?: TaggedField[];
}

/** ControlledShutdown v0 is the one request that still uses header v0 (no client id). */
const CONTROLLED_SHUTDOWN = 7;
const API_VERSIONS = 18;

/** Request header version for an API version: 2 when the request is flexible, else 1. */
export function requestHeaderVersion(apiKey: number, apiVersion: number, flexible: boolean): number {
  if (apiKey === CONTROLLED_SHUTDOWN && apiVersion === 0) return 0;
  return flexible ? 2 : 1;
}

/**
 * Response header version: 1 (with tagged fields) for flexible responses, except ApiVersions,
 * whose response header is always v0 so that a client can read it before it knows which
 * versions the broker speaks (KIP-511).
 */
export function responseHeaderVersion(apiKey: number, flexible: boolean): number {
  if (apiKey === API_VERSIONS) return 0;
  return flexible ? 1 : 0;
}

/** Reads the fixed part of a request header: key, version, correlation id. */
export function readRequestHeaderPrefix(r: Reader): { apiKey: number; apiVersion: number; correlationId: number } {
  const apiKey = r.int16();
  const apiVersion = r.int16();
  const correlationId = r.int32();
  return { apiKey, apiVersion, correlationId };
}

/** Reads the rest of a request header of `headerVersion` after its fixed prefix. */
export function readRequestHeaderRest(r: Reader, headerVersion: number, header: RequestHeader): void {
  if (headerVersion >= 1) header.clientId = r.nullableString(); // never compact, even in v2
  if (headerVersion >= 2) {
    const unknown = readUnknownTaggedFields(r);
    if (unknown) header.unknownTaggedFields = unknown;
  }
}

export function writeRequestHeader(w: Writer, headerVersion: number, h: RequestHeader): void {
  w.int16(h.apiKey);
  w.int16(h.apiVersion);
  w.int32(h.correlationId);
  if (headerVersion >= 1) w.nullableString(h.clientId);
  if (headerVersion >= 2) writeUnknownTaggedFields(w, h.unknownTaggedFields);
}

/** Reads a tagged-field section in which no tag is known. */
export function readUnknownTaggedFields(r: Reader): TaggedField[] | undefined {
  const count = r.uvarint();
  let fields: TaggedField[] | undefined;
  for (let i = 0; i < count; i++) {
    const tag = r.uvarint();
    const size = r.uvarint();
    (fields ??= []).push({ tag, data: r.take(size, 'tagged field') });
  }
  return fields;
}

export function writeUnknownTaggedFields(w: Writer, fields: TaggedField[] | undefined): void {
  if (fields === undefined) {
    w.uvarint(0);
    return;
  }
  w.uvarint(fields.length);
  for (const f of fields) writeUnknownTaggedField(w, f);
}

/** Reads a response header of `headerVersion`; returns the correlation id. */
export function readResponseHeader(r: Reader, headerVersion: number): { correlationId: number; unknownTaggedFields?: TaggedField[] } {
  const correlationId = r.int32();
  if (headerVersion >= 1) {
    const unknown = readUnknownTaggedFields(r);
    if (unknown) return { correlationId, unknownTaggedFields: unknown };
  }
  return { correlationId };
}
