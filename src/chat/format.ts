/**
 * The Llama-2 chat format, token for token as Meta's llama/generation.py `chat_completion` builds
 * it, plus the SFT loss mask and a helper that fits a long dialog into the context.
 *
 *   [system]  user₁  assistant₁  user₂  assistant₂ ... userₙ [assistantₙ]
 *   →  BOS "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user₁} [/INST] {assistant₁} " EOS
 *      BOS "[INST] {user₂} [/INST] {assistant₂} " EOS  ...  BOS "[INST] {userₙ} [/INST]"
 *
 * Every turn string is encoded on its own (so each gets the tokenizer's dummy-prefix "▁"), user and
 * assistant texts are Python-`strip()`ed (after the system prompt is folded into the first user
 * message), and BOS/EOS are ids, never text.
 *
 * The SFT contract: `renderDialog` returns `ids` and `lossMask` of the same length. lossMask[i] = 1
 * marks ids[i] as a token to learn — the tokens of an assistant answer (everything the turn string
 * encodes to after the encoding of its "[INST] ... [/INST]" prefix) and the EOS closing that turn.
 * A trainer predicting ids[i] from ids[..i] uses lossMask[i] for that target.
 *
 * Not here: sampling, stop conditions, or any other chat template.
 */
import { check, Llama2Error } from '../util/errors.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

export type Role = 'system' | 'user' | 'assistant';
export interface Message {
  role: Role;
  content: string;
}

export const B_INST = '[INST]';
export const E_INST = '[/INST]';
export const B_SYS = '<<SYS>>\n';
export const E_SYS = '\n<</SYS>>\n\n';
/** Meta refuses dialogs containing these (generation.py SPECIAL_TAGS + the unsafe-request check) */
export const SPECIAL_TAGS = [B_INST, E_INST, '<<SYS>>', '<</SYS>>'] as const;

export interface RenderOptions {
  /** render messages containing [INST], <<SYS>>, ... as plain text instead of refusing them */
  allowSpecialTags?: boolean;
}

export interface RenderedDialog {
  ids: number[];
  /** 1 on assistant answer tokens and the EOS closing each answered turn; same length as ids */
  lossMask: number[];
}

export interface FittedDialog extends RenderedDialog {
  /** the dialog actually rendered: the system message (if any) and the newest turns */
  dialog: Message[];
  /** how many user/assistant pairs were dropped from the front */
  droppedPairs: number;
}

/** One user turn and the assistant answer to it (absent for the final prompt of a generation). */
interface Turn {
  user: string;
  assistant?: string;
}

/** Python's str.strip() with no argument: the characters str.isspace() accepts. */
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');
export const pyStrip = (s: string): string => s.replace(PY_STRIP, '');

/**
 * Tokens and SFT mask of a whole dialog. A dialog ending with an assistant message is rendered
 * complete (a training example); one ending with a user message ends with that turn's prompt.
 */
export function renderDialog(tok: Tokenizer, dialog: readonly Message[], opts: RenderOptions = {}): RenderedDialog {
  const { system, turns } = parseDialog(dialog, opts);
  return renderTurns(tok, system, turns);
}

/** The ids to prefill for generating the next assistant answer (the dialog must end with a user message). */
export function renderPrompt(tok: Tokenizer, dialog: readonly Message[], opts: RenderOptions = {}): number[] {
  const { system, turns } = parseDialog(dialog, opts);
  const last = turns[turns.length - 1]!;
  check(last.assistant === undefined, 'chat: a prompt for generation must end with a user message, but the dialog ends with an assistant message');
  return renderTurns(tok, system, turns).ids;
}

/**
 * Renders the newest part of `dialog` that fits in `maxTokens`: drops the oldest user/assistant
 * pairs one at a time, keeping the system prompt (folded into the first kept user message).
 * Throws a Llama2Error when even the last turn (with the system prompt) is too long.
 */
export function fitDialog(tok: Tokenizer, dialog: readonly Message[], maxTokens: number, opts: RenderOptions = {}): FittedDialog {
  check(Number.isInteger(maxTokens) && maxTokens > 0, `chat: expected maxTokens to be a positive integer but found ${maxTokens}`);
  const { system, turns } = parseDialog(dialog, opts);
  const alone = turns.map((t) => renderTurns(tok, undefined, [t]).ids.length); // each turn without the system prompt
  let rest = alone.reduce((a, b) => a + b, 0);
  for (let k = 0; k < turns.length; k++) {
    rest -= alone[k]!;
    const first = system === undefined ? alone[k]! : renderTurns(tok, system, [turns[k]!]).ids.length;
    if (first + rest <= maxTokens) {
      const kept = turns.slice(k);
      const out = renderTurns(tok, system, kept);
      return { ...out, dialog: toMessages(system, kept), droppedPairs: k };
    }
  }
  const last = turns[turns.length - 1]!;
  const need = renderTurns(tok, system, [last]).ids.length;
  throw new Llama2Error(
    `chat: the last ${last.assistant === undefined ? 'user turn' : 'user/assistant pair'} needs ${need} tokens` +
      `${system === undefined ? '' : ' with the system prompt'} but only ${maxTokens} fit; shorten it or raise the context length`,
  );
}

/** Validates roles and order (as chat_completion asserts) and folds the system prompt away. */
function parseDialog(dialog: readonly Message[], opts: RenderOptions): { system?: string; turns: Turn[] } {
  check(Array.isArray(dialog) && dialog.length > 0, 'chat: expected a dialog with at least one message but found none');
  dialog.forEach((m, i) => {
    check(typeof m === 'object' && m !== null && (m.role === 'system' || m.role === 'user' || m.role === 'assistant'), () =>
      `chat: message ${i}: expected role "system", "user" or "assistant" but found ${JSON.stringify((m as { role?: unknown } | null)?.role)}`);
    check(typeof m.content === 'string', () => `chat: message ${i} (${m.role}): expected string content but found ${typeof m.content}`);
    if (!opts.allowSpecialTags) {
      const tag = SPECIAL_TAGS.find((t) => m.content.includes(t));
      check(tag === undefined, () =>
        `chat: message ${i} (${m.role}) contains the special tag ${JSON.stringify(tag)}; Llama-2 chat reserves ${SPECIAL_TAGS.join(' ')} (set allowSpecialTags to render them as plain text)`);
    }
  });
  let rest = dialog;
  let system: string | undefined;
  if (dialog[0]!.role === 'system') {
    system = dialog[0]!.content;
    rest = dialog.slice(1);
    check(rest.length > 0, 'chat: a system message must be followed by a user message, but the dialog ends after it');
  }
  const turns: Turn[] = [];
  rest.forEach((m, j) => {
    const i = j + (system === undefined ? 0 : 1);
    const want: Role = j % 2 === 0 ? 'user' : 'assistant';
    check(m.role === want, () =>
      `chat: message ${i}: expected ${want} (after an optional system message, roles alternate user, assistant, user, ...) but found ${m.role}`);
    if (want === 'user') turns.push({ user: m.content });
    else turns[turns.length - 1]!.assistant = m.content;
  });
  return system === undefined ? { turns } : { system, turns };
}

function renderTurns(tok: Tokenizer, system: string | undefined, turns: readonly Turn[]): RenderedDialog {
  check(tok.bosId >= 0 && tok.eosId >= 0, 'chat: the Llama-2 chat format needs BOS and EOS pieces, but the tokenizer lacks one');
  const ids: number[] = [];
  const lossMask: number[] = [];
  turns.forEach((t, k) => {
    const user = k === 0 && system !== undefined ? B_SYS + system + E_SYS + t.user : t.user;
    const prefix = `${B_INST} ${pyStrip(user)} ${E_INST}`;
    const p = tok.encode(prefix);
    ids.push(tok.bosId);
    lossMask.push(0);
    if (t.assistant === undefined) {
      for (const id of p) { ids.push(id); lossMask.push(0); } // no push(...p): a long message would overflow the stack
      return;
    }
    const full = tok.encode(`${prefix} ${pyStrip(t.assistant)} `);
    let shared = 0; // the prompt's tokens; normally all of p (BPE does not merge "]" with "▁")
    while (shared < p.length && shared < full.length && p[shared] === full[shared]) shared++;
    full.forEach((id, i) => { ids.push(id); lossMask.push(i < shared ? 0 : 1); });
    ids.push(tok.eosId);
    lossMask.push(1);
  });
  return { ids, lossMask };
}

function toMessages(system: string | undefined, turns: readonly Turn[]): Message[] {
  const out: Message[] = system === undefined ? [] : [{ role: 'system', content: system }];
  for (const t of turns) {
    out.push({ role: 'user', content: t.user });
    if (t.assistant !== undefined) out.push({ role: 'assistant', content: t.assistant });
  }
  return out;
}
