/** File helpers: atomic writes (temp file + rename) and positioned reads with clear errors. */
import { closeSync, fsyncSync, openSync, readSync, renameSync, writeSync, unlinkSync, fstatSync } from 'node:fs';
import { Llama2Error } from './errors.js';

/** Writes `chunks` to `path` through `path.tmp-<pid>` and a rename, so readers never see half a file. */
export function writeFileAtomic(path: string, chunks: Uint8Array | string | (Uint8Array | string)[]): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    for (const c of Array.isArray(chunks) ? chunks : [chunks]) {
      const b = typeof c === 'string' ? Buffer.from(c, 'utf8') : c;
      let off = 0;
      while (off < b.length) off += writeSync(fd, b, off, b.length - off);
    }
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

/** An open file for positioned reads; `what` names it in errors ("GGUF model.gguf"). */
export class FileReader {
  readonly fd: number;
  readonly size: number;
  constructor(readonly path: string, readonly what: string) {
    try {
      this.fd = openSync(path, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new Llama2Error(`${what}: cannot open ${path} (${code === 'ENOENT' ? 'no such file' : code ?? String(e)})`);
    }
    const st = fstatSync(this.fd);
    if (st.isDirectory()) {
      closeSync(this.fd);
      throw new Llama2Error(`${what}: ${path} is a directory; expected a file`);
    }
    this.size = st.size;
  }

  /** Reads exactly `length` bytes at `offset` into a fresh buffer, or throws naming the truncation. */
  read(offset: number, length: number, field = 'data'): Uint8Array {
    if (offset + length > this.size) {
      throw new Llama2Error(
        `${this.what}: file is truncated: ${field} needs bytes ${offset}..${offset + length} but the file has ${this.size} bytes`,
      );
    }
    const buf = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const n = readSync(this.fd, buf, got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    if (got !== length) throw new Llama2Error(`${this.what}: short read at ${offset} (${got} of ${length} bytes)`);
    return buf;
  }

  close(): void {
    closeSync(this.fd);
  }
}
