// 1 MB single-line inputs encode in (near-)linear time: this checks that they finish and round-trip,
// and prints MB/s; it asserts no timings (the machine is shared). A quadratic encoder would take
// minutes here and hit the test timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { StreamDecoder } from '../src/tokenizer/stream.js';
import { loadVocab } from '../src/tokenizer/load.js';

const MB = 1 << 20;
const TIMEOUT_MS = 60_000; // generous: ~1 s per input is typical on a loaded 2-core machine

/** `unit` repeated to about `bytes` UTF-8 bytes */
const fill = (unit: string, bytes: number): string => unit.repeat(Math.ceil(bytes / Buffer.byteLength(unit)));

function randomWords(bytes: number): string {
  const words = ['the', 'little', 'girl', 'named', 'Lily', 'model', 'trained', 'Xin', 'chào', '今天', 'Привет', '🦀', 'x1', 'once'];
  let seed = 1;
  const parts: string[] = [];
  let size = 0;
  while (size < bytes) {
    seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
    const w = words[seed % words.length]!;
    parts.push(w);
    size += Buffer.byteLength(w) + 1;
  }
  return parts.join(' ');
}

test('1 MB single-line inputs encode fast and round-trip', { timeout: TIMEOUT_MS }, () => {
  const tok = new Tokenizer(loadVocab('tests/fixtures/oracle/tokenizer/tokenizer.model'));
  const inputs: [string, string][] = [
    ['a', fill('a', MB)],
    ['digits', fill('0123456789', MB)],
    ['CJK', fill('今天天气很好我喜欢学习龘靐齉', MB)],
    ['emoji', fill('🦀😀👍🏽🇻🇳', MB)],
    ['random words', randomWords(MB)],
    ['spaces', fill(' ', MB / 4)],
  ];
  for (const [name, text] of inputs) {
    const t0 = performance.now();
    const ids = tok.encode(text);
    const t1 = performance.now();
    const back = tok.decode(ids);
    const t2 = performance.now();
    const sd = new StreamDecoder(tok);
    let streamed = 0;
    for (const id of ids) streamed += sd.push(id).length;
    streamed += sd.flush().length;
    const t3 = performance.now();
    assert.equal(back, text, `${name}: decode(encode(x)) != x`);
    assert.equal(streamed, text.length, `${name}: streamed length`);
    const mb = Buffer.byteLength(text) / 1e6;
    console.log(
      `${name.padEnd(12)} ${mb.toFixed(2)} MB → ${ids.length} ids: encode ${(mb / ((t1 - t0) / 1000)).toFixed(1)} MB/s, ` +
        `decode ${(mb / ((t2 - t1) / 1000)).toFixed(1)} MB/s, stream ${(mb / ((t3 - t2) / 1000)).toFixed(1)} MB/s`,
    );
  }
});
