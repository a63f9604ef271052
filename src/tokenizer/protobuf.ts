/**
 * Just enough of the protobuf wire format for SentencePiece's tokenizer.model: a field reader that
 * names the file and offset on every truncation, and a writer. Wire types 0 (varint), 1 (64-bit),
 * 2 (length-delimited) and 5 (32-bit); groups (3, 4) are rejected.
 *
 * Not a general protobuf library: no schemas, no packed repeated fields, no 64-bit integers beyond
 * 2^53 (int32 values, negative ones included, are exact through `int32`).
 */
import { Llama2Error } from '../util/errors.js';

export const WIRE = { VARINT: 0, I64: 1, LEN: 2, I32: 5 } as const;

export interface ProtoField {
  field: number;
  wire: number;
  /** byte offset of the tag in the whole buffer (for error messages) */
  at: number;
  /** VARINT: the value as a float (exact up to 2^53) and as int32 (low 32 bits, two's complement) */
  value: number;
  int32: number;
  /** LEN: the payload; I32/I64: the raw little-endian bytes */
  bytes: Uint8Array;
}

/** Reads the fields of one message `buf[start..end)`; `what` names the file in errors. */
export function* protoFields(buf: Uint8Array, what: string, start = 0, end = buf.length): Generator<ProtoField> {
  let pos = start;
  const truncated = (at: number, field: string): Llama2Error =>
    new Llama2Error(`${what}: truncated or corrupt protobuf: ${field} at byte ${at} runs past the end of its message (byte ${end})`);
  const varint = (): { value: number; int32: number } => {
    let value = 0;
    let lo = 0;
    for (let i = 0, scale = 1; i < 10; i++, scale *= 128) {
      if (pos >= end) throw truncated(pos, 'a varint');
      const b = buf[pos++]!;
      value += (b & 0x7f) * scale;
      if (i < 5) lo = (lo | ((b & 0x7f) << (7 * i))) >>> 0;
      if ((b & 0x80) === 0) return { value, int32: lo | 0 };
    }
    throw new Llama2Error(`${what}: corrupt protobuf: varint longer than 10 bytes before byte ${pos}`);
  };
  const empty = new Uint8Array(0);
  while (pos < end) {
    const at = pos;
    const tag = varint().value;
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 0) throw new Llama2Error(`${what}: corrupt protobuf: field number 0 at byte ${at}`);
    if (wire === WIRE.VARINT) {
      const v = varint();
      yield { field, wire, at, value: v.value, int32: v.int32, bytes: empty };
    } else if (wire === WIRE.LEN || wire === WIRE.I32 || wire === WIRE.I64) {
      const len = wire === WIRE.LEN ? varint().value : wire === WIRE.I32 ? 4 : 8;
      if (pos + len > end) throw truncated(at, `field ${field} (${len} bytes)`);
      yield { field, wire, at, value: 0, int32: 0, bytes: buf.subarray(pos, pos + len) };
      pos += len;
    } else {
      throw new Llama2Error(`${what}: corrupt protobuf: unsupported wire type ${wire} for field ${field} at byte ${at}`);
    }
  }
}

/** Accumulates one message; nested messages are written with `message`. */
export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private readonly scratch: number[] = [];
  private length = 0;

  private flushScratch(): void {
    if (this.scratch.length === 0) return;
    this.push(Uint8Array.from(this.scratch));
    this.scratch.length = 0;
  }

  private push(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }

  private varint(v: number): void {
    if (v < 0) { // int32 negatives: ten bytes, sign-extended to 64 bits
      let lo = v >>> 0;
      for (let i = 0; i < 4; i++, lo >>>= 7) this.scratch.push((lo & 0x7f) | 0x80);
      this.scratch.push((lo & 0x0f) | 0x70 | 0x80); // bits 28..31 plus sign bits 32..34
      for (let i = 0; i < 4; i++) this.scratch.push(0xff);
      this.scratch.push(0x01);
      return;
    }
    while (v >= 0x80) {
      this.scratch.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    this.scratch.push(v);
  }

  private tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  /** int32 / enum / bool (true → 1) */
  int(field: number, v: number | boolean): this {
    this.tag(field, WIRE.VARINT);
    this.varint(typeof v === 'boolean' ? (v ? 1 : 0) : v);
    return this;
  }

  float(field: number, v: number): this {
    this.tag(field, WIRE.I32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.scratch.push(...b);
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.tag(field, WIRE.LEN);
    this.varint(b.length);
    this.flushScratch();
    this.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, Buffer.from(s, 'utf8'));
  }

  message(field: number, m: ProtoWriter): this {
    return this.bytes(field, m.finish());
  }

  finish(): Uint8Array {
    this.flushScratch();
    return Buffer.concat(this.chunks, this.length);
  }
}
