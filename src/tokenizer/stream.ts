/**
 * Incremental detokenization for streaming generation: feed ids one at a time, get back text that
 * never splits a character. Byte pieces (`<0xNN>`) are held back while they may still complete a
 * UTF-8 sequence; bytes that can no longer become a character come out as U+FFFD, exactly where
 * Tokenizer.decode would put them. The dummy-prefix space rule is the same as decode's, so
 *
 *   const sd = new StreamDecoder(tok);
 *   const text = ids.map((id) => sd.push(id)).join('') + sd.flush();   // === tok.decode(ids)
 *
 * Not here: stop strings or any knowledge of the chat format (the generator handles those).
 */
import type { Tokenizer } from './tokenizer.js';
import { decodeByteRun } from './utf8.js';

export class StreamDecoder {
  private readonly tok: Tokenizer;
  private bytes: number[] = []; // byte pieces not yet turned into text
  private atStart: boolean; // no visible piece yet: a leading "▁" is the dummy prefix

  constructor(tok: Tokenizer) {
    this.tok = tok;
    this.atStart = tok.addDummyPrefix;
  }

  /** Adds one id; returns the text that became final (possibly ''). */
  push(id: number): string {
    this.tok.checkId(id);
    const b = this.tok.byteOf(id);
    const out: string[] = [];
    if (b >= 0) {
      this.bytes.push(b);
      this.atStart = false;
      const used = decodeByteRun(this.bytes, 0, this.bytes.length, false, out);
      this.bytes.splice(0, used);
      return out.join('');
    }
    this.drain(out);
    out.push(this.tok.surface(id, this.atStart));
    if (!this.tok.isControl(id)) this.atStart = false;
    return out.join('');
  }

  /** Ends the stream: bytes of an unfinished character come out as U+FFFD each. */
  flush(): string {
    const out: string[] = [];
    this.drain(out);
    return out.join('');
  }

  /** Starts a new text (e.g. the next completion) with the same tokenizer. */
  reset(): void {
    this.bytes = [];
    this.atStart = this.tok.addDummyPrefix;
  }

  private drain(out: string[]): void {
    if (this.bytes.length === 0) return;
    decodeByteRun(this.bytes, 0, this.bytes.length, true, out);
    this.bytes = [];
  }
}
