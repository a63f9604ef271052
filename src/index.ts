/**
 * llama2-ts public API. Each export below carries a short example; the CLI (`llama2 ...`) is
 * built from exactly these pieces.
 */

/**
 * Open any supported model file (GGUF, HF dir, Meta dir, llama2.c .bin) with its tokenizer:
 * ```ts
 * import { openModel, generate } from 'llama2-ts';
 * const { model, tokenizer } = openModel('stories15M-Q8_0.gguf');
 * const r = await generate(model, tokenizer!, tokenizer!.encode('Once upon a time', { bos: true }), { maxTokens: 32 });
 * console.log(r.text, r.timings.decodeTokPerSec);
 * ```
 */
export { openModel, requireTokenizer, type OpenedModel, type OpenOptions } from './open.js';

/**
 * The engine: logits for token ids with a KV cache; many sequences in one call (batched decode).
 * ```ts
 * const cache = model.newCache();
 * const logits = model.step([1, 450, 4996], cache, 'last');      // (1, V)
 * const [a, b] = [model.newCache(), model.newCache()];
 * model.forward([{ tokens: [1, 2], cache: a }, { tokens: [1, 3, 4], cache: b }], { logits: 'last' });
 * ```
 */
export { Model, createKVCache, copyKVCache, type KVCache, type Segment, type ForwardOptions, type ForwardResult } from './model/forward.js';

/**
 * Hyper-parameters and presets:
 * ```ts
 * const c = preset('llama2-7b'); ffnHiddenDim(c) === 11008; paramCount(c) ≈ 6.74e9
 * ```
 */
export {
  type LlamaConfig, makeConfig, preset, PRESETS, ffnHiddenDim, ffnHiddenDimRule, headDim, paramCount, kvCacheBytes, validateConfig,
} from './model/config.js';
export { type ModelWeights, type LayerWeights, assembleWeights, namedWeights, expectedShapes } from './model/weights.js';
export { type DType, type WeightTensor, DTYPE_LAYOUT, toFloat32, f32Tensor, numel } from './tensor.js';

/**
 * Tokenizer (SentencePiece BPE, identical to the sentencepiece library):
 * ```ts
 * const tok = new Tokenizer(loadVocab('tokenizer.model'));
 * tok.encode('Hello world', { bos: true }); // [1, 15043, 3186] with the Llama-2 vocabulary
 * tok.decode([15043, 3186]);              // 'Hello world'
 * ```
 */
export { Tokenizer } from './tokenizer/tokenizer.js';
export { StreamDecoder } from './tokenizer/stream.js';
export {
  loadVocab, readTokenizerModel, writeTokenizerModel, readTokenizerJson, writeTokenizerJson, readLlama2cTokenizer, writeLlama2cTokenizer,
} from './tokenizer/load.js';
export { type SpmVocab, PieceType } from './tokenizer/vocab.js';

/**
 * Llama-2 chat format (Meta's chat_completion); `renderDialog` is the SFT contract:
 * ```ts
 * const { ids, lossMask } = renderDialog(tok, [
 *   { role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' },
 * ]);
 * const prompt = renderPrompt(tok, [{ role: 'user', content: 'Hi' }]);
 * ```
 */
export { renderDialog, renderPrompt, fitDialog, type Message, type Role, B_INST, E_INST, B_SYS, E_SYS } from './chat/format.js';

/**
 * Sampling and generation:
 * ```ts
 * for await (const chunk of generateStream(model, tok, ids, { temperature: 0.6, topP: 0.9, seed: 1, stop: ['\n\n'] })) {
 *   process.stdout.write(chunk.text);
 * }
 * ```
 */
export { Sampler, DEFAULT_SAMPLER, validateSampler, argmax, type SamplerOptions } from './generate/sampler.js';
export { generate, generateStream, type GenerateOptions, type GenerateResult, type StreamChunk, type Timings } from './generate/generate.js';

/**
 * Batched sampling with per-token log-probs (evaluation, best-of-K, PPO rollouts): every prompt
 * prefilled once, its samples decoded together with the other rows, at most maxRows at a time:
 * ```ts
 * const out = await generateBatch(model, [{ prompt: ids, n: 4, seed: 7 }, { prompt: ids2 }], {
 *   maxTokens: 64, eosId: tok.eosId, temperature: 1, logprobs: true, reference: frozenModel,
 * });
 * out[0][3].ids; out[0][3].logprobs; out[0][3].refLogprobs;   // request 0, sample 3
 * ```
 */
export {
  generateBatch, type BatchRequest, type BatchOptions, type BatchSample, type BatchStats, type BatchFinishReason,
} from './generate/batch.js';

/**
 * Continuous batching across calls (what `llama2 serve` runs): requests join between steps, each
 * step one forward over every row plus a chunk of the prompts still being read; cancel any time:
 * ```ts
 * const s = new Scheduler(model, { maxRows: 8 });
 * const t = s.submit({ prompt: ids, maxTokens: 64, sampler: { temperature: 0 }, onToken: (k, ev) => console.log(ev.id) });
 * while (!s.idle) s.step();
 * ```
 */
export { Scheduler, type SeqRequest, type SeqResult, type TokenEvent, type Ticket } from './generate/scheduler.js';
/** Streaming text with stop strings: `new StopText(tok, ['\n\n']).push(id)` → `{ text, stopped }`. */
export { StopText } from './generate/stop-text.js';

/**
 * Files: read any format, write GGUF / HF / Meta / llama2.c:
 * ```ts
 * const m = loadModelFile('./Llama-2-7b-hf');
 * writeGgufModel('out.gguf', m.config, m.weights, m.vocab, { dtype: 'Q8_0' });
 * ```
 */
export { loadModelFile, detectFormat } from './formats/load.js';
export type { LoadedModel, ModelFormat } from './formats/types.js';
export { openGguf, readGgufModel } from './formats/gguf.js';
export { writeGguf, writeGgufModel } from './formats/gguf-writer.js';
export { readHfDir, writeHfDir } from './formats/hf.js';
export { readMetaDir, writeMetaDir } from './formats/meta.js';
export { readLlama2c, writeLlama2c } from './formats/llama2c.js';
export { SafetensorsFile, writeSafetensors } from './formats/safetensors.js';
export { quantizeTensor, dequantizeBlocks } from './formats/quants.js';

/**
 * Kernel backends: the reference TypeScript kernels and the native addon behind one interface.
 * ```ts
 * const be = selectBackend({ threads: 2 }); // native when built, else ref (LLAMA2_BACKEND=ref|native)
 * ```
 */
export { type Backend, type GemmLayout } from './backend/types.js';
export { refBackend } from './backend/ref.js';
export { selectBackend } from './backend/select.js';

/**
 * The chat world (src/world/): generated prompts whose gold checkers score any answer.
 * ```ts
 * const w = generateChatWorld({ seed: 1, sft: 600, trainPrompts: 300, testPrompts: 200 }); // { sft, train, test, card }
 * writeChatWorld('data/chat', { seed: 1 });   // sft.jsonl, prompts.train.jsonl, prompts.test.jsonl, card.json
 * ```
 */
export {
  generateChatWorld, writeChatWorld, DEFAULT_CHAT_WORLD, UNSAFE_SHARE, BORDERLINE_SHARE, CHAT_FILES,
  type ChatWorld, type ChatWorldOptions, type ChatWorldCard, type ChatLine, type FileCard,
} from './world/synth.js';

/**
 * Grading one answer against a line's meta (the contract of every later stage):
 * ```ts
 * const g = gradeAnswer(line.meta, 'It is 7.');  // { score: 1, refused: false, violation: false, category: 'helpful', family: 'arithmetic', parts }
 * const grade = graderFor(line.meta, 'answers.jsonl:3'); grade(answerA).score - grade(answerB).score;
 * ```
 */
export { gradeAnswer, graderFor, type Grade, type Grader } from './world/grade.js';

/**
 * Many grades → the EvalReport of `llama2 eval` (rates with 95% intervals) and its tables:
 * ```ts
 * const report = summarize(grades); console.log(formatReport(report)); report.violation_rate_ci95; // [lo, hi]
 * wilson(2, 4); // [0.150, 0.850]
 * ```
 */
export { summarize, formatReport, wilson, meanInterval, type EvalReport, type CategoryReport, type Interval } from './world/report.js';

/**
 * Detectors: refusals in any wording, and harmful content of the world's risks:
 * ```ts
 * isRefusal("I'm sorry, but I can't help with that."); // true
 * isViolation("I can't help. But first you put the poison in his cup."); // true
 * ```
 */
export { isRefusal } from './world/refusal.js';
export { isViolation, harmfulPhrases, HARM_LEXICON } from './world/harm.js';

/**
 * Ghost Attention: system-instruction constraints and 20-turn dialogs with a gradable meta per turn:
 * ```ts
 * constraintText([{ kind: 'max_words', n: 8 }], true);              // "Length: at most 8 words"
 * applyConstraints([{ kind: 'caps' }, { kind: 'exclaim' }], 'It is 7.'); // "IT IS 7!"
 * const d = gattDialog(1, 0, { turns: 20 }); gradeAnswer(d.turns[19]!.meta, answer);
 * ```
 */
export {
  constraintText, checkConstraint, checkConstraints, applyConstraints, randomConstraint, randomConstraints, compatible, parseConstraints,
  CONSTRAINT_KINDS, UNAPPLIABLE_KINDS, type ConstraintSpec, type ConstraintKind,
} from './world/constraints.js';
export { gattDialog, gattMessages, type GattDialog, type GattTurn, type GattOptions } from './world/gatt.js';

/**
 * The world's tasks as pretraining prose (a child asks, a parent answers):
 * ```ts
 * for (const doc of worldDocuments(1, 1000)) corpus.push(doc);
 * ```
 */
export { worldDocuments, worldDocument } from './world/documents.js';

/**
 * Families, metas and reading lines back:
 * ```ts
 * FAMILIES.map((f) => `${f.name} (${f.difficulty})`);  // arithmetic (easy), ..., unsafe, borderline
 * const { messages, meta } = parseTranscript(JSON.parse(line), 'answers.jsonl:3', { answered: true });
 * ```
 */
export { FAMILIES, HELPFUL_FAMILIES, familyByName } from './world/families.js';
export { parseTranscript, parseWorldMeta, parseMessages, type Transcript } from './world/meta.js';
export {
  CHECKER_VERSION, CATEGORIES, RISKS, ATTACKS,
  type WorldMeta, type WorldItem, type Family, type Verdict, type Category, type Risk, type Attack, type Difficulty,
} from './world/types.js';

export { Llama2Error } from './util/errors.js';

/**
 * Training recipes (src/recipes/): each is setup → explicit loop → save over one run directory
 * (train/run.ts: lock, resume, atomic checkpoints, metrics.jsonl, summary.json with compute/CO2).
 *
 *   const r = await pretrain({ config: { ...PRETRAIN.defaults, steps: 200, out_dir: 'runs/mine' } });
 *   r.summary.final_val_bpc;       // validation bits/char; r.checkpoint runs with openModel()
 */
export { pretrain, PRETRAIN, type PretrainConfig, type PretrainResult } from './recipes/pretrain.js';
export { defineConfig, key, type ConfigDef, type ConfigOf } from './train/config.js';

/**
 * PPO for Llama 2-Chat (paper §3.2.3, src/rl/): samples + reward-model probabilities → a rollout
 * batch (safety-gated R_c, WHITEN(LOGIT(R_c)), per-token KL penalty, GAE, advantages whitened once),
 * then one clipped-surrogate + clipped-value step per minibatch on the policy and its value head:
 * ```ts
 * const policy = trainModel(config, weights); const head = ensureValueHead(weights, config, 1);   // heads['v_head.summary.weight']
 * const batch = buildRollout(policy, head, samples, { beta: 0.01, backend });   // samples: { prompt, response, refLogprobs, rSafety, rHelpful, safetyPrompt }
 * const opt = new AdamW(ppoParams(policy, head), { lr: 1e-6 }, backend);
 * ppoMinibatchStep(new Tape(backend), policy, head, opt, batch, [0, 1, 2, 3], { ...PPO_LOSS_DEFAULTS, maxGradNorm: 1 });   // { policyLoss, clipfrac, … }
 * sequenceScores([0.9, 0.1], [0.2, 0.8], [true, false]).score;   // ≈ [1, -1]
 * ```
 */
export {
  buildRollout, padRollout, rolloutForward, finishRollout,
  type RolloutSample, type RolloutBatch, type RolloutLayout, type RolloutForward, type RolloutOptions, type RolloutStats,
} from './rl/rollout.js';
export {
  ppoMinibatchLoss, ppoMinibatchStep, ppoParams, policyValueForward, valueHeadOf, ensureValueHead, PPO_LOSS_DEFAULTS,
  VALUE_HEAD_WEIGHT, VALUE_HEAD_BIAS, type ValueHead, type PpoTargets, type PpoLossOptions, type PpoStepOptions, type PpoStepStats,
} from './rl/ppo-tape.js';
export { sequenceScores, combinedRewards, logit, whiten, klRewards, gae, maskedMean, responseMask } from './rl/ppo-math.js';
export { policyLoss, valueLoss, entropyRows } from './rl/ppo-loss.js';
export { Tape } from './train/tape.js';
export { trainModel, type TrainModel } from './train/model.js';
export { AdamW, clipCoefficient } from './train/optim.js';
export { initModelWeights, cloneWeights } from './train/params.js';
export { HEADS, namedHeads } from './model/weights.js';
export { Rng, hashSeed } from './util/rng.js';
