/**
 * Reading documents out of corpus files, streaming (1 MiB reads; a whole corpus is never in memory,
 * only the current document).
 *
 *   .txt    documents are blocks of lines separated by one or more blank lines (a blank line is
 *           empty or whitespace only); a document is its lines joined with "\n" ("\r\n" endings
 *           lose the "\r"). The stories corpus writes this form.
 *   .jsonl  one JSON object per non-blank line, the document under `textKey` (default "text");
 *           a malformed line is an error naming file:line.
 *
 * Files must be UTF-8 (a leading BOM is dropped; a bad byte is an error naming its byte offset and
 * line). Empty documents are skipped.
 * What it is not: tokenization or packing (prepare.ts).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { extname } from 'node:path';
import { Llama2Error, describe, plain } from '../util/errors.js';
import { StrictUtf8Decoder } from '../util/utf8.js';

export type CorpusFileKind = 'txt' | 'jsonl';

export interface Doc {
  text: string;
  /** "file:line" of its first line, for messages */
  where: string;
}

const CHUNK = 1 << 20;

/** The kind of a corpus file from its extension, or a Llama2Error. */
export function corpusKind(path: string): CorpusFileKind {
  const ext = extname(path).toLowerCase();
  if (ext === '.txt') return 'txt';
  if (ext === '.jsonl') return 'jsonl';
  throw new Llama2Error(`data: ${path}: expected a .txt or .jsonl file but found ${ext === '' ? 'no extension' : `"${ext}"`}`);
}

/** Lines of a UTF-8 file with their 1-based numbers, without "\n" / "\r\n". */
export function* readLines(path: string): Generator<[string, number]> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Llama2Error(`data: cannot open ${path} (${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code ?? String(e)})`);
  }
  const buf = new Uint8Array(CHUNK);
  const decoder = new StrictUtf8Decoder(`data: ${path}`, { dropBom: true });
  let carry = '';
  let lineNo = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      const text = carry + (n > 0 ? decoder.push(buf.subarray(0, n)) : decoder.end());
      let i = 0;
      for (;;) {
        const j = text.indexOf('\n', i);
        if (j < 0) break;
        yield [text.charCodeAt(j - 1) === 13 && j > i ? text.slice(i, j - 1) : text.slice(i, j), ++lineNo];
        i = j + 1;
      }
      carry = text.slice(i);
      if (n === 0) break;
    }
    if (carry.length > 0) yield [carry.endsWith('\r') ? carry.slice(0, -1) : carry, ++lineNo];
  } finally {
    closeSync(fd);
  }
}

const BLANK = /^\s*$/;

/** Documents of one corpus file (see the header for the formats). */
export function* readDocuments(path: string, textKey = 'text'): Generator<Doc> {
  const kind = corpusKind(path);
  if (kind === 'txt') {
    let lines: string[] = [];
    let first = 0;
    for (const [line, no] of readLines(path)) {
      if (BLANK.test(line)) {
        if (lines.length > 0) yield { text: lines.join('\n'), where: `${path}:${first}` };
        lines = [];
      } else {
        if (lines.length === 0) first = no;
        lines.push(line);
      }
    }
    if (lines.length > 0) yield { text: lines.join('\n'), where: `${path}:${first}` };
    return;
  }
  for (const [line, no] of readLines(path)) {
    if (BLANK.test(line)) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new Llama2Error(`data: ${path}:${no}: expected a JSON object per line but found invalid JSON (${plain(e)})`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      throw new Llama2Error(`data: ${path}:${no}: expected a JSON object per line but found ${describe(obj)}`);
    }
    const text = (obj as Record<string, unknown>)[textKey];
    if (typeof text !== 'string') {
      throw new Llama2Error(`data: ${path}:${no}: expected a string field "${textKey}" but found ${text === undefined ? 'no such field' : describe(text)}`);
    }
    if (text.length > 0) yield { text, where: `${path}:${no}` };
  }
}

/** Unicode code points in a string (surrogate pairs count once). */
export function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xdc00 && c <= 0xdfff && i > 0) {
      const h = s.charCodeAt(i - 1);
      if (h >= 0xd800 && h <= 0xdbff) n--;
    }
  }
  return n;
}
