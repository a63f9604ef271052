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

export { Llama2Error } from './util/errors.js';
