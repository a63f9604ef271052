/**
 * The server's engine, on a worker thread so that the native addon's synchronous forward calls
 * (a 7B prefill takes seconds) never block the HTTP thread: it opens the models, runs one
 * continuous-batching Scheduler per policy model (src/generate/scheduler.ts), turns sampled ids
 * into text with stop strings (src/generate/stop-text.ts), and scores dialogs with the reward
 * models. Between two steps it yields to its own event loop, so new jobs join and cancels free
 * slots at once.
 *
 * Protocol: src/serve/protocol.ts. Started by src/serve/engine.ts with the WorkerConfig as
 * workerData. What it is not: HTTP, JSON shapes or chat rendering (the main thread does those).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { setImmediate as turn } from 'node:timers/promises';
import { openModel, type OpenedModel } from '../open.js';
import { Scheduler, type Ticket } from '../generate/scheduler.js';
import { StopText } from '../generate/stop-text.js';
import { scoreDialogs, scoreHead } from '../chat/reward-score.js';
import { Llama2Error } from '../util/errors.js';
import type { DoneOut, FromWorker, GenerateJob, RewardJob, ToWorker, TokenOut, WorkerConfig } from './protocol.js';

const port = parentPort!;
const cfg = workerData as WorkerConfig;
const post = (m: FromWorker) => port.postMessage(m);

let policies: { opened: OpenedModel; sched: Scheduler }[] = [];
let rms: { helpful: OpenedModel; safety: OpenedModel } | null = null;
const tickets = new Map<number, Ticket>();
let tokens: TokenOut[] = [];
let done: DoneOut[] = [];
const rewards: RewardJob[] = [];
/** resolves the loop's wait for work */
let wake: (() => void) | null = null;

function open(): void {
  const o = { threads: cfg.threads, ctx: cfg.ctx };
  policies = cfg.models.map((m) => {
    const opened = openModel(m.path, { ...o, tokenizer: m.tokenizer });
    return { opened, sched: new Scheduler(opened.model, { maxRows: cfg.parallel, prefillChunk: cfg.prefillChunk }) };
  });
  if (cfg.rewards) {
    const rm = (path: string, flag: string) => {
      const r = openModel(path, o);
      scoreHead(r.model, `${flag} ${path}`);
      if (!r.tokenizer) throw new Llama2Error(`${flag} ${path}: no tokenizer found with the reward model`);
      return r;
    };
    rms = { helpful: rm(cfg.rewards.helpful, '--rm-helpful'), safety: rm(cfg.rewards.safety, '--rm-safety') };
  }
}

function submit(job: GenerateJob): void {
  const p = policies[job.model]!;
  const tok = p.opened.tokenizer;
  const texts = Array.from({ length: job.n }, () => new StopText(tok, job.stop));
  const eos = tok?.eosId ?? -1;
  let left = job.n;
  const ticket = p.sched.submit({
    prompt: job.prompt, n: job.n, seed: job.seed, maxTokens: job.maxTokens, sampler: job.sampler,
    stopIds: job.stopAtEos && eos >= 0 ? [eos] : [], logprobs: job.logprobs, topLogprobs: job.topLogprobs,
    onToken: (k, ev, ids) => {
      const r = texts[k]!.push(ev.id);
      const out: TokenOut = { id: job.id, k, token: ev.id, text: r.text, logprob: ev.logprob };
      if (ev.top) out.top = ev.top;
      tokens.push(out);
      return r.stopped ? ids.length : null;
    },
    onDone: (k, res) => {
      done.push({ id: job.id, k, finishReason: res.finishReason, text: texts[k]!.flush(), tokens: res.ids.length });
      if (--left === 0) tickets.delete(job.id);
    },
  }, `request ${job.id}`);
  tickets.set(job.id, ticket);
}

function flush(): void {
  if (tokens.length === 0 && done.length === 0) return;
  post({ type: 'events', tokens, done });
  tokens = [];
  done = [];
}

function scoreReward(job: RewardJob): void {
  if (!rms) throw new Llama2Error('rewards: the server was started without --rm-helpful and --rm-safety');
  const one = (r: OpenedModel, flag: string) => scoreDialogs(r.model, r.tokenizer!, [job.messages], { where: flag })[0]!;
  post({ type: 'reward', id: job.id, scores: { helpful: one(rms.helpful, '--rm-helpful'), safety: one(rms.safety, '--rm-safety') } });
}

port.on('message', (m: ToWorker) => {
  try {
    if (m.type === 'generate') submit(m);
    else if (m.type === 'reward') rewards.push(m);
    else tickets.get(m.id)?.cancel();
  } catch (e) {
    if (m.type !== 'cancel') post({ type: 'error', id: m.id, message: e instanceof Error ? e.message : String(e) });
  }
  flush(); // a cancel's done events
  wake?.();
});

async function loop(): Promise<never> {
  for (;;) {
    for (const job of rewards.splice(0)) {
      try { scoreReward(job); } catch (e) { post({ type: 'error', id: job.id, message: e instanceof Error ? e.message : String(e) }); }
    }
    let busy = false;
    try {
      for (const p of policies) {
        if (p.sched.idle) continue;
        p.sched.step();
        busy = true;
      }
    } catch (e) { // a bug, not a user mistake: the server cannot go on
      post({ type: 'fatal', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      process.exit(1);
    }
    flush();
    if (busy) await turn(); // messages (new jobs, cancels) are handled here
    else await new Promise<void>((resolve) => { wake = resolve; });
    wake = null;
  }
}

try {
  open();
  post({
    type: 'ready', rewards: rms !== null,
    models: policies.map((p) => ({ backend: p.opened.model.backend.name, ctx: p.opened.model.config.max_seq_len, vocabSize: p.opened.model.config.vocab_size, vocab: p.opened.loaded.vocab ?? null })),
  });
} catch (e) {
  post({ type: 'fatal', message: e instanceof Llama2Error ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e) });
  process.exit(1);
}
void loop();
