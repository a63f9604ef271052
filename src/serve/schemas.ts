/**
 * Request bodies of the server's endpoints as zod schemas: the OpenAI fields the server honours
 * (chat completions, completions), llama.cpp's /tokenize and /detokenize, and the server's own
 * /v1/rewards and /v1/preferences. Unknown fields are ignored (as OpenAI-compatible servers do),
 * except the OpenAI features this server does not have (tools, logit_bias, echo), which are a
 * 400 naming the field rather than a silent difference. `parseBody` turns the first zod issue
 * into an ApiError naming the field ("messages[1].role").
 *
 * What it is not: the handlers (openai.ts, app.ts) or the response shapes.
 */
import { z } from 'zod';
import { ApiError } from './errors.js';
import { LEVELS } from '../data/preferences.js';

const optional = <T extends z.ZodType>(t: T) => t.nullable().optional();

const sampling = {
  model: optional(z.string()),
  temperature: optional(z.number().min(0).max(2)),
  top_p: optional(z.number().gt(0).max(1)),
  /** llama.cpp's extensions */
  top_k: optional(z.number().int().min(0)),
  min_p: optional(z.number().min(0).lt(1)),
  repeat_penalty: optional(z.number().gt(0)),
  ignore_eos: optional(z.boolean()),
  n: optional(z.number().int().min(1)),
  max_tokens: optional(z.number().int().min(1)),
  stop: optional(z.union([z.string(), z.array(z.string()).max(16)])),
  seed: optional(z.number().int().min(0).max(0xffffffff)),
  presence_penalty: optional(z.number().min(-2).max(2)),
  frequency_penalty: optional(z.number().min(-2).max(2)),
  stream: optional(z.boolean()),
  stream_options: optional(z.object({ include_usage: optional(z.boolean()) })),
  user: optional(z.string()),
  logit_bias: optional(z.record(z.string(), z.number()).refine((o) => Object.keys(o).length === 0, 'logit_bias is not supported by this server')),
};

const textPart = z.object({ type: z.literal('text'), text: z.string() });

export const ChatMessage = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(textPart)]).nullable(),
});

export const ChatRequest = z.object({
  ...sampling,
  messages: z.array(ChatMessage).min(1),
  max_completion_tokens: optional(z.number().int().min(1)),
  logprobs: optional(z.boolean()),
  top_logprobs: optional(z.number().int().min(0).max(20)),
  tools: optional(z.array(z.unknown()).max(0, 'tools are not supported by this server')),
  functions: optional(z.array(z.unknown()).max(0, 'functions are not supported by this server')),
});
export type ChatRequest = z.infer<typeof ChatRequest>;

const ids = z.array(z.number().int().min(0)).min(1);
export const CompletionRequest = z.object({
  ...sampling,
  prompt: z.union([z.string(), z.array(z.string()).min(1), ids, z.array(ids).min(1)]),
  logprobs: optional(z.number().int().min(0).max(20)),
  echo: optional(z.literal(false, 'echo is not supported by this server')),
  suffix: optional(z.literal('', 'suffix is not supported by this server')),
});
export type CompletionRequest = z.infer<typeof CompletionRequest>;

export const TokenizeRequest = z.object({
  content: z.string(),
  add_special: optional(z.boolean()),
  with_pieces: optional(z.boolean()),
  model: optional(z.string()),
});

export const DetokenizeRequest = z.object({ tokens: z.array(z.number().int().min(0)), model: optional(z.string()) });

const plainMessage = z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() });

export const RewardRequest = z.object({
  messages: z.array(plainMessage).min(2),
  safety_prompt: optional(z.boolean()),
});

/** a compare-mode choice from the chat page (or any client): written as one PreferenceRecord */
export const PreferenceRequest = z.object({
  /** the dialog before the two answers (ends with the user turn) */
  prompt: z.array(plainMessage).min(1),
  /** the two answers, as shown: A then B */
  answers: z.array(z.object({ content: z.string(), model: z.string() })).length(2),
  /** which answer the person chose: 0 (A) or 1 (B) */
  chosen: z.union([z.literal(0), z.literal(1)]),
  level: z.enum(LEVELS),
  /** per answer (A, B): did the person judge it safe */
  safe: z.tuple([z.boolean(), z.boolean()]),
  is_safety_prompt: z.boolean(),
});
export type PreferenceRequest = z.infer<typeof PreferenceRequest>;

/** "messages[1].role" from a zod path */
function paramOf(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s;
}

/** The body as the schema's type, or a 400 ApiError naming the first bad field. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'expected the request body to be a JSON object');
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const param = paramOf(issue.path);
  throw new ApiError(400, `${param || 'body'}: ${issue.message}`, param || null);
}
