/**
 * The public surface of Strata's Kafka codec. Sans-I/O: frames in, objects out, and back.
 *
 * Frames passed to the decoders exclude the 4-byte length prefix (what FrameDecoder yields).
 * Encoders return the whole frame, prefix included, as a list of Buffers: the first chunk
 * starts with the length, and `records` data handed in by the caller follows as its own
 * chunks, never copied. Write the list with `socket.cork()` + `write()` per chunk, or
 * `Buffer.concat` it when one buffer is needed.
 *
 * Malformed input raises WireError (or its subclasses UnknownApiKeyError and
 * UnsupportedVersionError) and nothing else.
 */
import { API_CODECS, API_INFO, type RequestBodyByKey, type ResponseBodyByKey } from './generated/index.js';
import { UnknownApiKeyError, UnsupportedVersionError } from './runtime/errors.js';
import {
  readRequestHeaderPrefix,
  readRequestHeaderRest,
  readResponseHeader,
  requestHeaderVersion,
  responseHeaderVersion,
  writeRequestHeader,
  writeUnknownTaggedFields,
  type RequestHeader,
} from './runtime/header.js';
import { Reader } from './runtime/reader.js';
import { Writer } from './runtime/writer.js';

export * from './generated/index.js';
export { EncodeError, UnknownApiKeyError, UnsupportedVersionError, WireError } from './runtime/errors.js';
export { DEFAULT_MAX_FRAME_BYTES, FrameDecoder } from './runtime/frame.js';
export { requestHeaderVersion, responseHeaderVersion, type RequestHeader } from './runtime/header.js';
export { Reader } from './runtime/reader.js';
export { Writer, type Records } from './runtime/writer.js';
export { ZERO_UUID } from './runtime/uuid.js';
export type { TaggedField } from './runtime/tagged.js';

/** A decoded request: its header and its body (typed by `header.apiKey`). */
export interface DecodedRequest<K extends keyof RequestBodyByKey = keyof RequestBodyByKey> {
  header: RequestHeader & { apiKey: K };
  body: RequestBodyByKey[K];
}

function apiInfo(apiKey: number) {
  const info = API_INFO[apiKey];
  if (info === undefined) throw new UnknownApiKeyError(apiKey);
  return info;
}

function checkVersion(apiKey: number, apiVersion: number): boolean {
  const info = apiInfo(apiKey);
  if (apiVersion < info.minVersion || apiVersion > info.maxVersion) {
    throw new UnsupportedVersionError(apiKey, apiVersion, info.minVersion, info.maxVersion);
  }
  return info.firstFlexibleVersion >= 0 && apiVersion >= info.firstFlexibleVersion;
}

/**
 * Decodes only the request header. A broker calls this first so that it can answer an
 * ApiVersions request of an unknown version (with a v0 response, as Kafka does) and close
 * the connection for other unknown keys or versions, before it decodes the body. Throws
 * UnknownApiKeyError or UnsupportedVersionError for a key or version the definitions lack.
 */
export function decodeRequestHeader(frame: Buffer): { header: RequestHeader; bodyOffset: number } {
  const r = new Reader(frame);
  const prefix = readRequestHeaderPrefix(r);
  const header: RequestHeader = { ...prefix, clientId: null };
  const flexible = checkVersion(prefix.apiKey, prefix.apiVersion);
  readRequestHeaderRest(r, requestHeaderVersion(prefix.apiKey, prefix.apiVersion, flexible), header);
  return { header, bodyOffset: r.pos };
}

/** Decodes a request frame (without its length prefix). Trailing bytes after the body are ignored, as Kafka does. */
export function decodeRequest(frame: Buffer): DecodedRequest {
  const { header, bodyOffset } = decodeRequestHeader(frame);
  const body = decodeRequestBody(header.apiKey as keyof RequestBodyByKey, header.apiVersion, frame, bodyOffset);
  return { header, body } as DecodedRequest;
}

/** Decodes a request body that starts at `offset` of `frame`. */
export function decodeRequestBody<K extends keyof RequestBodyByKey>(
  apiKey: K,
  apiVersion: number,
  frame: Buffer,
  offset: number,
): RequestBodyByKey[K] {
  checkVersion(apiKey, apiVersion);
  return API_CODECS[apiKey]!.decodeRequest(new Reader(frame, offset), apiVersion) as RequestBodyByKey[K];
}

/** Encodes a request with its header; returns the frame (length prefix included) as chunks. */
export function encodeRequest<K extends keyof RequestBodyByKey>(
  header: RequestHeader & { apiKey: K },
  body: RequestBodyByKey[K],
): Buffer[] {
  const flexible = checkVersion(header.apiKey, header.apiVersion);
  const w = new Writer();
  const size = w.reserveInt32();
  writeRequestHeader(w, requestHeaderVersion(header.apiKey, header.apiVersion, flexible), header);
  API_CODECS[header.apiKey]!.encodeRequest(w, header.apiVersion, body as never);
  size.buf.writeInt32BE(w.length - 4, size.at);
  return w.finish();
}

/** Decodes a response frame (without its length prefix) of a known key and version. */
export function decodeResponse<K extends keyof ResponseBodyByKey>(
  frame: Buffer,
  apiKey: K,
  apiVersion: number,
): { correlationId: number; body: ResponseBodyByKey[K] } {
  const info = apiInfo(apiKey);
  checkVersion(apiKey, apiVersion);
  const flexible = info.firstFlexibleResponseVersion >= 0 && apiVersion >= info.firstFlexibleResponseVersion;
  const r = new Reader(frame);
  const { correlationId } = readResponseHeader(r, responseHeaderVersion(apiKey, flexible));
  const body = API_CODECS[apiKey]!.decodeResponse(r, apiVersion) as ResponseBodyByKey[K];
  return { correlationId, body };
}

/** Encodes a response with its header; returns the frame (length prefix included) as chunks. */
export function encodeResponse<K extends keyof ResponseBodyByKey>(
  apiKey: K,
  apiVersion: number,
  correlationId: number,
  body: ResponseBodyByKey[K],
): Buffer[] {
  const info = apiInfo(apiKey);
  checkVersion(apiKey, apiVersion);
  const flexible = info.firstFlexibleResponseVersion >= 0 && apiVersion >= info.firstFlexibleResponseVersion;
  const w = new Writer();
  const size = w.reserveInt32();
  w.int32(correlationId);
  if (responseHeaderVersion(apiKey, flexible) >= 1) writeUnknownTaggedFields(w, undefined);
  API_CODECS[apiKey]!.encodeResponse(w, apiVersion, body as never);
  size.buf.writeInt32BE(w.length - 4, size.at);
  return w.finish();
}

/** Concatenates encoder output into one Buffer (for tests and tools; the broker writes chunks). */
export function concatFrame(chunks: readonly Buffer[]): Buffer {
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}
