/**
 * Streaming text with stop strings: ids in, text out, holding back any text that could still be
 * the start of a stop string, and ending at the first stop string (which is not part of the
 * text). The one implementation behind `generateStream` (generate.ts) and the server's streams
 * (src/serve/), so both cut at the same place:
 *
 *   const st = new StopText(tok, ['\nUser:']);
 *   for (const id of ids) { const r = st.push(id); out += r.text; if (r.stopped) break; }
 *   out += st.flush();   // the held-back tail when no stop string came
 *
 * With a codec of null (a model without a tokenizer) there is no text and no stop strings.
 * Not here: stop ids (EOS) or any sampling.
 */
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { StreamDecoder } from '../tokenizer/stream.js';
import { Llama2Error } from '../util/errors.js';

export class StopText {
  private readonly dec: StreamDecoder | null;
  private readonly stops: string[];
  /** decoded but held back (could start a stop string) */
  private pending = '';
  /** text released so far */
  text = '';
  stopped = false;

  constructor(codec: Tokenizer | null, stops: readonly string[] = []) {
    this.stops = stops.filter((s) => s.length > 0);
    if (codec === null && this.stops.length > 0) throw new Llama2Error('stop strings: they need a tokenizer to turn ids into text, and there is none');
    this.dec = codec ? new StreamDecoder(codec) : null;
  }

  /** Adds one id: the text that became final, and whether a stop string just ended the text. */
  push(id: number): { text: string; stopped: boolean } {
    if (this.stopped) return { text: '', stopped: true };
    if (this.dec) this.pending += this.dec.push(id);
    const pending = this.pending;
    let cut = pending.length;
    for (const s of this.stops) {
      const at = pending.indexOf(s);
      if (at >= 0) { cut = Math.min(cut, at); this.stopped = true; }
    }
    if (!this.stopped) { // release what cannot be the start of a stop string
      for (const s of this.stops) {
        for (let k = Math.min(s.length - 1, pending.length); k > 0; k--) {
          if (pending.endsWith(s.slice(0, k))) { cut = Math.min(cut, pending.length - k); break; }
        }
      }
    }
    const out = pending.slice(0, cut);
    this.text += out;
    this.pending = this.stopped ? '' : pending.slice(cut);
    return { text: out, stopped: this.stopped };
  }

  /** The held-back text at the end (nothing after a stop string). */
  flush(): string {
    if (this.stopped) return '';
    const rest = this.pending + (this.dec ? this.dec.flush() : '');
    this.pending = '';
    this.text += rest;
    return rest;
  }
}
