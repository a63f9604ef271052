// Where two engines' greedy continuations of one prompt part, how close was the choice? Runs
// llama2's greedy decode of PROMPT on MODEL and prints, as JSON, the gap between the top two logits
// at the first generated token whose text is not a prefix of OTHER (the other engine's
// continuation): a gap of a few 1e-3 is a near tie that rounding (e.g. Q8_0 activations) decides.
//
//   node scripts/greedy-gap.mjs MODEL PROMPT OTHER_TEXT N        (after npm run build)
import { openModel } from '../dist/src/open.js';
import { createKVCache } from '../dist/src/model/forward.js';

const [path, prompt, other, nArg] = process.argv.slice(2);
const { model, tokenizer } = openModel(path);
const ids = tokenizer.encode(prompt, { bos: true });
const cache = createKVCache(model.config, ids.length + Number(nArg) + 1);
let logits = model.step(ids, cache);
const out = [];
let text = '';
let minGap = Infinity;
for (let i = 0; i < Number(nArg); i++) {
  let a = 0, b = -1;
  for (let v = 1; v < logits.length; v++) {
    if (logits[v] > logits[a]) { b = a; a = v; } else if (b < 0 || logits[v] > logits[b]) b = v;
  }
  const gap = logits[a] - logits[b];
  minGap = Math.min(minGap, gap);
  out.push(a);
  const next = tokenizer.decode(out).replace(/^ /, '');
  const o = other.replace(/^ /, '');
  if (!o.startsWith(next) && o.startsWith(text)) {
    console.log(JSON.stringify({ diverges_at_token: i, ours: tokenizer.decode([a]), theirs_text_after: o.slice(text.length, text.length + 12), top2_gap: gap }));
    process.exit(0);
  }
  text = next;
  if (a === 2) break;
  logits = model.step([a], cache);
}
console.log(JSON.stringify({ diverges_at_token: null, min_top2_gap: minGap }));
