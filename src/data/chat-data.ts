/**
 * Chat training data: JSONL files in the formats the ecosystem uses, read into dialogs. The format
 * of each line is recognised by its content, so files may mix them:
 *
 *   {"messages": [{"role": "system"|"user"|"assistant", "content": "…"}, …]}
 *        OpenAI / TRL conversational. `content` may also be a list of parts [{"type": "text",
 *        "text": "…"}]. Optional "train_on": "all" (default: every assistant turn is learned) or
 *        "last" (only the final assistant turn: Ghost Attention data, where earlier turns are context).
 *   {"prompt": "…" | [messages], "completion": "…" | [one assistant message]}
 *        TRL prompt–completion: the loss is on the completion only.
 *   {"text": "\n\nHuman: … \n\nAssistant: …"}  or  {"chosen": "\n\nHuman: …"}
 *        Anthropic HH-RLHF transcripts (every Assistant turn is learned).
 * Any other field (e.g. "meta") is kept untouched for the caller. A dialog must end with an
 * assistant turn. A bad line is a Llama2Error `FILE:LINE: what was expected, what was found`, or —
 * with skipBad — reported to onBad and skipped.
 *
 * What it is not: tokenization (chat/format.ts renderDialog) or packing (packing.ts).
 */
import type { Message, Role } from '../chat/format.js';
import { Llama2Error, describe } from '../util/errors.js';
import { readLines } from './documents.js';
import { parseWorldMeta } from '../world/meta.js';
import { CHECKER_VERSION, type WorldMeta } from '../world/types.js';

export type TrainOn = 'all' | 'last';

export interface ChatSample {
  messages: Message[];
  /** which assistant turns carry the loss */
  trainOn: TrainOn;
  /** the line's "meta" object, if any */
  meta: Record<string, unknown> | null;
  /** FILE:LINE */
  where: string;
}

const ROLES: ReadonlySet<string> = new Set(['system', 'user', 'assistant']);

function bad(where: string, msg: string): never {
  throw new Llama2Error(`${where}: ${msg}`);
}

/** A message's content: a string or a list of text parts. */
function contentOf(c: unknown, where: string): string {
  if (typeof c === 'string') return c;
  if (Array.isArray(c) && c.every((p) => p && typeof p === 'object' && (p as { type?: unknown }).type === 'text' && typeof (p as { text?: unknown }).text === 'string')) {
    return c.map((p) => (p as { text: string }).text).join('');
  }
  return bad(where, `expected "content" to be a string or a list of {"type": "text", "text": …} parts, found ${describe(c)}`);
}

function messagesOf(raw: unknown, where: string, field: string): Message[] {
  if (!Array.isArray(raw) || raw.length === 0) bad(where, `expected "${field}" to be a non-empty list of messages, found ${describe(raw)}`);
  return raw.map((m, i) => {
    if (!m || typeof m !== 'object') bad(where, `${field}[${i}]: expected an object {"role", "content"}, found ${describe(m)}`);
    const role = (m as { role?: unknown }).role;
    if (typeof role !== 'string' || !ROLES.has(role)) {
      bad(where, `${field}[${i}]: expected role "system", "user" or "assistant", found ${describe(role)}`);
    }
    return { role: role as Role, content: contentOf((m as { content?: unknown }).content, `${where}: ${field}[${i}]`) };
  });
}

/** "\n\nHuman: … \n\nAssistant: …" → messages (HH-RLHF). */
export function parseHhText(text: string, where: string): Message[] {
  const parts = text.split(/\n\n(Human|Assistant): ?/);
  if (parts.length < 3 || parts[0]!.trim() !== '') {
    bad(where, `expected an HH-RLHF transcript starting with "\\n\\nHuman: ", found ${describe(text.slice(0, 40))}`);
  }
  const out: Message[] = [];
  for (let i = 1; i < parts.length; i += 2) {
    const role: Role = parts[i] === 'Human' ? 'user' : 'assistant';
    const content = parts[i + 1]!.trim();
    const prev = out[out.length - 1];
    if (prev && prev.role === role) prev.content += '\n\n' + content; // repeated speaker: one turn
    else out.push({ role, content });
  }
  return out;
}

/** Checks the dialog shape the chat format needs and that it ends with an answer. */
function checkDialog(messages: Message[], where: string): Message[] {
  const rest = messages[0]?.role === 'system' ? messages.slice(1) : messages;
  rest.forEach((m, i) => {
    const want = i % 2 === 0 ? 'user' : 'assistant';
    if (m.role !== want) bad(where, `message ${i + (rest === messages ? 0 : 1)}: expected ${want} (roles alternate user, assistant, … after an optional system message), found ${m.role}`);
  });
  if (rest.length === 0 || rest[rest.length - 1]!.role !== 'assistant') bad(where, 'expected the dialog to end with an assistant turn (the answer to learn)');
  return messages;
}

/** One parsed JSON line → a sample, its format recognised by its fields. */
export function parseChatRecord(raw: unknown, where: string): ChatSample {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) bad(where, `expected a JSON object, found ${describe(raw)}`);
  const r = raw as Record<string, unknown>;
  const meta = r['meta'] && typeof r['meta'] === 'object' && !Array.isArray(r['meta']) ? (r['meta'] as Record<string, unknown>) : null;
  if ('messages' in r) {
    const t = r['train_on'] ?? 'all';
    if (t !== 'all' && t !== 'last') bad(where, `expected "train_on" to be "all" or "last", found ${describe(t)}`);
    return { messages: checkDialog(messagesOf(r['messages'], where, 'messages'), where), trainOn: t, meta, where };
  }
  if ('prompt' in r || 'completion' in r) {
    const p = r['prompt'];
    const c = r['completion'];
    const prompt = typeof p === 'string' ? [{ role: 'user' as const, content: p }] : messagesOf(p, where, 'prompt');
    const completion = typeof c === 'string' ? [{ role: 'assistant' as const, content: c }] : messagesOf(c, where, 'completion');
    if (completion.length !== 1 || completion[0]!.role !== 'assistant') bad(where, 'expected "completion" to be a string or one assistant message');
    return { messages: checkDialog([...prompt, ...completion], where), trainOn: 'last', meta, where };
  }
  const text = typeof r['text'] === 'string' ? r['text'] : typeof r['chosen'] === 'string' ? r['chosen'] : undefined;
  if (text !== undefined) return { messages: checkDialog(parseHhText(text, where), where), trainOn: 'all', meta, where };
  return bad(where, `expected "messages", "prompt" + "completion", or an HH-RLHF "text" / "chosen" transcript; found keys ${Object.keys(r).map((k) => JSON.stringify(k)).join(', ') || 'none'}`);
}

export interface ReadChatOptions {
  /** skip bad lines (reported to onBad) instead of stopping at the first */
  skipBad?: boolean;
  onBad?: (message: string) => void;
}

/** The samples of a JSONL file, in order (blank lines ignored). */
export function* readChatFile(path: string, o: ReadChatOptions = {}): Generator<ChatSample> {
  for (const [line, no] of readLines(path)) {
    if (line.trim() === '') continue;
    const where = `${path}:${no}`;
    try {
      let raw: unknown;
      try {
        raw = JSON.parse(line);
      } catch (e) {
        bad(where, `invalid JSON (${(e as Error).message})`);
      }
      yield parseChatRecord(raw, where);
    } catch (e) {
      if (!(e instanceof Llama2Error) || !o.skipBad) throw e;
      o.onBad?.(e.message);
    }
  }
}

/** A prompt for sampling: a dialog ending with a user turn, with its line's meta. */
export interface ChatPrompt {
  messages: Message[];
  /** the line's "meta" object, if any */
  meta: Record<string, unknown> | null;
  /** the chat world's meta when the line has one (its gold checker can grade answers) */
  world: WorldMeta | null;
  where: string;
}

/**
 * Prompt lines {"messages": [..., user turn], "meta"?} (the chat world's prompts.*.jsonl, or any
 * dialogs): the form the sampling stages (rejection sampling, PPO, preference collection) read.
 */
export function readChatPrompts(path: string): ChatPrompt[] {
  const out: ChatPrompt[] = [];
  for (const [line, no] of readLines(path)) {
    if (line.trim() === '') continue;
    const where = `${path}:${no}`;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (e) {
      bad(where, `invalid JSON (${(e as Error).message})`);
    }
    const r = raw as Record<string, unknown> | null;
    if (!r || typeof r !== 'object' || !('messages' in r)) bad(where, `expected {"messages": [..., a user turn], "meta"?}, found ${describe(raw)}`);
    const messages = messagesOf(r['messages'], where, 'messages');
    if (messages[messages.length - 1]!.role !== 'user') bad(where, 'expected the dialog to end with a user turn (the prompt to answer)');
    const meta = r['meta'] && typeof r['meta'] === 'object' && !Array.isArray(r['meta']) ? (r['meta'] as Record<string, unknown>) : null;
    const world = meta && meta['checker'] === CHECKER_VERSION ? parseWorldMeta(meta, where) : null;
    out.push({ messages, meta, world, where });
  }
  if (out.length === 0) bad(path, 'expected at least one prompt line');
  return out;
}
