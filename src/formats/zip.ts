/**
 * A read-only ZIP archive reader for PyTorch checkpoints (torch.save ≥ 1.6 writes a zip of
 * `<archive>/data.pkl`, `<archive>/data/<key>`, `<archive>/version`, ...).
 *
 * It reads the central directory (ZIP64 included, for files over 4 GB or 65535 entries) and gives
 * positioned reads inside *stored* entries. It is not a general unzip: torch writes entries
 * uncompressed (method 0), so compressed entries are rejected, and nothing is ever extracted.
 *
 * Layout (APPNOTE.TXT): [local header + data]* central-directory-entry* [zip64 EOCD record +
 * zip64 EOCD locator] EOCD. The EOCD is found by scanning back from the end of the file.
 */
import { FileReader } from '../util/fs.js';
import { Llama2Error, quote } from '../util/errors.js';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;

export interface ZipEntry {
  readonly name: string;
  /** 0 = stored; anything else is compressed */
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localHeaderOffset: number;
}

export interface ZipArchive {
  readonly path: string;
  /** entries by name, in central-directory order */
  readonly entries: ReadonlyMap<string, ZipEntry>;
  /** Reads `length` bytes at `offset` inside a stored entry. */
  read(name: string, offset?: number, length?: number): Uint8Array;
  /** The file offset of byte `offset` of a stored entry, `length` bytes checked to lie inside it. */
  fileOffset(name: string, offset: number, length: number): number;
  close(): void;
}

/** 64-bit little-endian value as a number (exact up to 2^53, far beyond any file we read). */
function u64(dv: DataView, off: number): number {
  return dv.getUint32(off, true) + dv.getUint32(off + 4, true) * 0x100000000;
}

/** Opens a zip archive and reads its central directory; `what` names it in errors. */
export function openZip(path: string, what = `zip ${path}`): ZipArchive {
  const file = new FileReader(path, what);
  try {
    const entries = readCentralDirectory(file, what);
    return makeArchive(file, path, what, entries);
  } catch (e) {
    file.close();
    throw e;
  }
}

function readCentralDirectory(file: FileReader, what: string): Map<string, ZipEntry> {
  // 1. find the end-of-central-directory record (it may be followed by a comment of up to 64 KiB)
  const tailLen = Math.min(file.size, EOCD_SIZE + MAX_COMMENT);
  const tailStart = file.size - tailLen;
  const tail = file.read(tailStart, tailLen, 'end of archive');
  const tv = new DataView(tail.buffer);
  let eocd = -1;
  for (let p = tailLen - EOCD_SIZE; p >= 0; p--) {
    if (tv.getUint32(p, true) === SIG_EOCD && p + EOCD_SIZE + tv.getUint16(p + 20, true) === tailLen) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) {
    throw new Llama2Error(`${what}: no zip end-of-central-directory record: the file is truncated or is not a zip archive (${file.size} bytes)`);
  }
  let count = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);

  // 2. ZIP64: the locator sits right before the EOCD and points at the zip64 EOCD record
  const locAbs = tailStart + eocd - 20;
  if (locAbs >= 0 && (count === U16_MAX || cdSize === U32_MAX || cdOffset === U32_MAX || hasSig(file, locAbs, SIG_ZIP64_LOCATOR))) {
    const loc = new DataView(file.read(locAbs, 20, 'zip64 locator').buffer);
    if (loc.getUint32(0, true) !== SIG_ZIP64_LOCATOR) {
      throw new Llama2Error(`${what}: the end-of-central-directory record asks for ZIP64 but there is no zip64 locator before it`);
    }
    const recOff = u64(loc, 8);
    const rec = new DataView(file.read(recOff, 56, 'zip64 end-of-central-directory record').buffer);
    if (rec.getUint32(0, true) !== SIG_ZIP64_EOCD) {
      throw new Llama2Error(`${what}: expected a zip64 end-of-central-directory record at byte ${recOff}`);
    }
    count = u64(rec, 32);
    cdSize = u64(rec, 40);
    cdOffset = u64(rec, 48);
  }

  // 3. the central directory entries
  const cd = file.read(cdOffset, cdSize, 'central directory');
  const dv = new DataView(cd.buffer);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || dv.getUint32(p, true) !== SIG_CENTRAL) {
      throw new Llama2Error(`${what}: central directory entry ${i} of ${count} is damaged (at byte ${cdOffset + p})`);
    }
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    let compressedSize = dv.getUint32(p + 20, true);
    let size = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length) {
      throw new Llama2Error(`${what}: central directory entry ${i} of ${count} runs past the directory's ${cd.length} bytes (damaged)`);
    }
    let localHeaderOffset = dv.getUint32(p + 42, true);
    const nameBytes = cd.subarray(p + 46, p + 46 + nameLen);
    const name = flags & 0x800 // UTF-8 flag; otherwise byte for byte (torch.save names are ASCII)
      ? new TextDecoder('utf-8', { ignoreBOM: true }).decode(nameBytes)
      : Buffer.from(nameBytes.buffer, nameBytes.byteOffset, nameBytes.byteLength).toString('latin1');
    // zip64 extended information (header id 1): only the fields whose 32-bit value is 0xFFFFFFFF
    let q = p + 46 + nameLen;
    const extraEnd = q + extraLen;
    while (q + 4 <= extraEnd) {
      const id = dv.getUint16(q, true);
      const len = dv.getUint16(q + 2, true);
      if (id === 0x0001) {
        let r = q + 4;
        const next = (field: string): number => {
          if (r + 8 > Math.min(q + 4 + len, extraEnd)) throw new Llama2Error(`${what}: entry ${quote(name)}: its zip64 extra field is too short for the ${field}`);
          r += 8;
          return u64(dv, r - 8);
        };
        if (size === U32_MAX) size = next('size');
        if (compressedSize === U32_MAX) compressedSize = next('compressed size');
        if (localHeaderOffset === U32_MAX) localHeaderOffset = next('local header offset');
      }
      q += 4 + len;
    }
    entries.set(name, { name, method, compressedSize, size, localHeaderOffset });
    p = extraEnd + commentLen;
  }
  return entries;
}

function hasSig(file: FileReader, off: number, sig: number): boolean {
  return new DataView(file.read(off, 4).buffer).getUint32(0, true) === sig;
}

function makeArchive(file: FileReader, path: string, what: string, entries: Map<string, ZipEntry>): ZipArchive {
  const dataStart = new Map<string, number>();
  const startOf = (e: ZipEntry): number => {
    let s = dataStart.get(e.name);
    if (s === undefined) {
      const h = new DataView(file.read(e.localHeaderOffset, 30, `local header of ${quote(e.name)}`).buffer);
      if (h.getUint32(0, true) !== SIG_LOCAL) {
        throw new Llama2Error(`${what}: no local header for entry ${quote(e.name)} at byte ${e.localHeaderOffset}`);
      }
      s = e.localHeaderOffset + 30 + h.getUint16(26, true) + h.getUint16(28, true);
      dataStart.set(e.name, s);
    }
    return s;
  };
  const locate = (name: string, offset: number, length: number | undefined): [number, number] => {
    const e = entries.get(name);
    if (!e) throw new Llama2Error(`${what}: no entry named ${quote(name)}`);
    if (e.method !== 0) {
      throw new Llama2Error(
        `${what}: entry ${quote(name)} is compressed (method ${e.method}); only stored entries (method 0, as torch.save writes them) can be read — re-save the checkpoint with torch.save`,
      );
    }
    const len = length ?? e.size - offset;
    if (offset < 0 || len < 0 || offset + len > e.size) {
      throw new Llama2Error(`${what}: entry ${quote(name)} has ${e.size} bytes; cannot read bytes ${offset}..${offset + len}`);
    }
    return [startOf(e) + offset, len];
  };
  return {
    path,
    entries,
    read(name: string, offset = 0, length?: number): Uint8Array {
      const [at, len] = locate(name, offset, length);
      return file.read(at, len, `entry ${quote(name)}`);
    },
    fileOffset(name: string, offset: number, length: number): number {
      const at = locate(name, offset, length)[0];
      if (at + length > file.size) throw new Llama2Error(`${what}: entry ${quote(name)} runs past the end of the file (truncated?)`);
      return at;
    },
    close(): void {
      file.close();
    },
  };
}
