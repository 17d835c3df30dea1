import type { Writer } from './writer.js';

/** A tagged field the codec does not know: its tag and raw payload, kept for re-encoding. */
export interface TaggedField {
  tag: number;
  data: Buffer;
}

/** The shared empty default for `bytes` fields; never written to. */
export const EMPTY_BYTES: Buffer = Buffer.alloc(0);

/** Writes one tagged field: tag, payload size, payload. */
export function writeTaggedField(w: Writer, tag: number, payload: Buffer): void {
  w.uvarint(tag);
  w.uvarint(payload.length);
  w.raw(payload);
}

export function writeUnknownTaggedField(w: Writer, field: TaggedField): void {
  writeTaggedField(w, field.tag, field.data);
}
