// Message helpers (src/util/errors.ts: quote, plain, formatBytes) and the strict UTF-8
// decoder every text input goes through (src/util/utf8.ts), checked against hand-written values
// and against TextDecoder with { fatal: true } as the reference for what is UTF-8.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Llama2Error, plain, formatBytes, quote, QUOTE_MAX_CHARS } from '../src/util/errors.js';
import { StrictUtf8Decoder, decodeUtf8, firstInvalidUtf8 } from '../src/util/utf8.js';
import { Rng } from '../src/util/rng.js';

test('quote: escapes what cannot be shown on one line, caps the length, keeps surrogate pairs whole', () => {
  assert.equal(quote('blk.0.attn_q.weight'), '"blk.0.attn_q.weight"');
  assert.equal(quote('a\u0000b\nc\r\t"\\'), '"a\\x00b\\nc\\r\\t\\"\\\\"');
  assert.equal(quote('\u007f\u0085\u2028\u2029\ufeff\u200b\u202e'), '"\\x7f\\x85\\u2028\\u2029\\ufeff\\u200b\\u202e"');
  assert.equal(quote('x\ud800y\udc00'), '"x\\ud800y\\udc00"', 'lone surrogates');
  assert.equal(quote('é😀▁'), '"é😀▁"', 'printable non-ASCII stays');
  const long = 'ab\n'.repeat(20000); // 60000 characters over 20000 lines
  const q = quote(long);
  assert.ok(!q.includes('\n') && q.length < 3 * QUOTE_MAX_CHARS, q);
  assert.ok(q.startsWith('"ab\\nab\\n') && q.endsWith('"… (60000 characters)'), q);
  const emoji = quote('😀'.repeat(100), 5); // 5 units would split the third pair: two are shown
  assert.equal(emoji, '"😀😀"… (100 characters)');
});

test('plain: an error message from elsewhere or a bare name, control characters escaped, cut', () => {
  let err: unknown;
  try {
    JSON.parse('{"a":\u0000\n\n}');
  } catch (e) {
    err = e;
  }
  const m = plain(err);
  assert.ok(!/[\u0000-\u001f]/.test(m), m);
  assert.match(m, /\\x00/);
  assert.equal(plain(new Error('x'.repeat(500)), 20), `${'x'.repeat(20)}…`);
});

test('formatBytes', () => {
  assert.equal(formatBytes(512), '512 bytes');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(300 * 1024 ** 2), '300.0 MiB');
  assert.equal(formatBytes(2.5 * 1024 ** 4), '2.50 TiB');
});

/** Reference: the longest prefix TextDecoder (fatal) accepts ends where the first bad character starts. */
function referenceBadOffset(bytes: Uint8Array): number {
  const td = new TextDecoder('utf-8', { fatal: true });
  try {
    td.decode(bytes);
    return -1;
  } catch { /* find where */ }
  for (let p = bytes.length - 1; p >= 0; p--) {
    try {
      td.decode(bytes.subarray(0, p));
      return p;
    } catch { /* shorter */ }
  }
  return 0;
}

test('StrictUtf8Decoder: any chunking gives TextDecoder\'s text; the first bad byte is located exactly', () => {
  const rng = new Rng(7);
  const alphabet = ['a', '\n', 'é', '▁', '😀', '\ufeff', '\u0000'].map((s) => Buffer.from(s, 'utf8'));
  const junk = [0x80, 0xbf, 0xc0, 0xc1, 0xe0, 0xed, 0xf0, 0xf4, 0xf5, 0xff];
  let bad = 0;
  for (let trial = 0; trial < 300; trial++) {
    const parts: number[] = [];
    const n = 1 + rng.below(40);
    for (let i = 0; i < n; i++) {
      if (rng.below(25) === 0) parts.push(junk[rng.below(junk.length)]!);
      else parts.push(...alphabet[rng.below(alphabet.length)]!);
    }
    if (trial % 5 === 0 && parts.length > 1) parts.pop(); // sometimes cut the last character short
    const bytes = Uint8Array.from(parts);
    const want = referenceBadOffset(bytes);
    // feed in random chunks
    const d = new StrictUtf8Decoder('in');
    let got = '';
    let error: Llama2Error | null = null;
    try {
      for (let p = 0; p < bytes.length;) {
        const len = 1 + rng.below(5);
        got += d.push(bytes.subarray(p, p + len));
        p += len;
      }
      got += d.end();
    } catch (e) {
      assert.ok(e instanceof Llama2Error, String(e));
      error = e;
    }
    if (want < 0) {
      assert.equal(error, null, `trial ${trial}: ${Buffer.from(bytes).toString('hex')}`);
      assert.equal(got, new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes), `trial ${trial}`);
      assert.equal(firstInvalidUtf8(bytes), -1);
    } else {
      bad++;
      assert.ok(error, `trial ${trial}: no error for ${Buffer.from(bytes).toString('hex')}`);
      const line = bytes.subarray(0, want).filter((b) => b === 0x0a).length + 1;
      assert.match(error.message, new RegExp(`^in: expected UTF-8 text but found .* at byte ${want} \\(line ${line}\\)$`), `trial ${trial}`);
      assert.equal(firstInvalidUtf8(bytes), want);
    }
  }
  assert.ok(bad > 50 && bad < 250, `both kinds of input were tried (${bad} bad of 300)`);
});

test('decodeUtf8 keeps a leading byte-order mark unless asked to drop it', () => {
  const b = Buffer.from('\ufeffhi', 'utf8');
  assert.equal(decodeUtf8(b, 'x'), '\ufeffhi');
  assert.equal(decodeUtf8(b, 'x', { dropBom: true }), 'hi');
  const d = new StrictUtf8Decoder('x', { dropBom: true }); // split inside the mark
  assert.equal(d.push(b.subarray(0, 2)) + d.push(b.subarray(2)) + d.end(), 'hi');
  assert.throws(() => decodeUtf8(Buffer.from([0x61, 0xe2, 0x82]), 'f.txt'), /^Llama2Error: f\.txt: expected UTF-8 text but found a character cut off by the end of the input \(bytes e2 82\) at byte 1 \(line 1\)$/);
});
