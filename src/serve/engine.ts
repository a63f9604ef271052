/**
 * The HTTP thread's handle on the engine worker (src/serve/worker.ts): starts it, waits for the
 * models, sends jobs and routes the worker's events back to each job's handlers. It also counts
 * the samples in flight, so the server can answer 429 when its queue is full.
 *
 *   const engine = await Engine.start(cfg);
 *   const job = engine.generate({ model: 0, prompt, n: 1, … }, { onToken, onDone });
 *   job.cancel();   // the client went away: its slot is free at the next step
 *
 * What it is not: HTTP or JSON (app.ts, openai.ts), or anything that runs a model on this thread.
 */
import { Worker } from 'node:worker_threads';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { Llama2Error } from '../util/errors.js';
import type { Message } from '../chat/format.js';
import type { DoneOut, FromWorker, GenerateJob, ModelInfo, TokenOut, WorkerConfig } from './protocol.js';

export interface JobHandlers {
  onToken(t: TokenOut): void;
  onDone(d: DoneOut): void;
  /** status 400: the worker refused the job (a user mistake); 500: the engine died */
  onError(message: string, status: 400 | 500): void;
}

interface Pending {
  n: number;
  left: number;
  h: JobHandlers;
}

export interface EngineModel extends ModelInfo {
  tokenizer: Tokenizer | null;
}

export class Engine {
  private nextId = 1;
  private readonly jobs = new Map<number, Pending>();
  private readonly rewardJobs = new Map<number, { resolve: (s: { helpful: number; safety: number }) => void; reject: (e: Error) => void }>();
  /** samples submitted and not finished */
  inFlight = 0;
  /** set when the worker died: every later call fails with it */
  fatal: string | null = null;
  /** called once when the worker dies (not at close) */
  onFatal: (() => void) | null = null;

  private constructor(private readonly worker: Worker, readonly models: EngineModel[], readonly rewards: boolean) {
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (e) => this.die(e.message));
    worker.on('exit', (code) => this.die(`the engine worker exited (code ${code})`));
  }

  /** Starts the worker and resolves once its models are open (a model error rejects, as a Llama2Error). */
  static start(cfg: WorkerConfig): Promise<Engine> {
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: cfg });
    return new Promise((resolve, reject) => {
      const first = (m: FromWorker) => {
        worker.off('message', first);
        worker.off('error', onError);
        if (m.type === 'ready') {
          resolve(new Engine(worker, m.models.map((i) => ({ ...i, tokenizer: i.vocab ? new Tokenizer(i.vocab) : null })), m.rewards));
        } else {
          void worker.terminate();
          reject(new Llama2Error(m.type === 'fatal' ? m.message : `engine: unexpected first message ${m.type}`));
        }
      };
      const onError = (e: Error) => { worker.off('message', first); reject(e); };
      worker.on('message', first);
      worker.once('error', onError);
    });
  }

  /** Sends a job; the handlers get its events. The returned cancel ends it ('abort' done events). */
  generate(job: Omit<GenerateJob, 'type' | 'id'>, h: JobHandlers): { cancel(): void } {
    const id = this.nextId++;
    if (this.fatal) {
      queueMicrotask(() => h.onError(this.fatal!, 500));
      return { cancel: () => {} };
    }
    this.jobs.set(id, { n: job.n, left: job.n, h });
    this.inFlight += job.n;
    this.worker.postMessage({ ...job, type: 'generate', id } satisfies GenerateJob);
    return { cancel: () => { if (this.jobs.has(id)) this.worker.postMessage({ type: 'cancel', id }); } };
  }

  /** Raw helpful and safety scores of a dialog ending with the answer to score. */
  reward(messages: Message[]): Promise<{ helpful: number; safety: number }> {
    if (this.fatal) return Promise.reject(new Error(this.fatal));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.rewardJobs.set(id, { resolve, reject });
      this.worker.postMessage({ type: 'reward', id, messages });
    });
  }

  async close(): Promise<void> {
    this.fatal ??= 'the server is shutting down';
    await this.worker.terminate();
  }

  private onMessage(m: FromWorker): void {
    if (m.type === 'events') {
      for (const t of m.tokens) this.jobs.get(t.id)?.h.onToken(t);
      for (const d of m.done) {
        const p = this.jobs.get(d.id);
        if (!p) continue;
        this.inFlight--;
        if (--p.left === 0) this.jobs.delete(d.id);
        p.h.onDone(d);
      }
    } else if (m.type === 'reward') {
      this.rewardJobs.get(m.id)?.resolve(m.scores);
      this.rewardJobs.delete(m.id);
    } else if (m.type === 'error') {
      const p = this.jobs.get(m.id);
      if (p) {
        this.jobs.delete(m.id);
        this.inFlight -= p.left;
        p.h.onError(m.message, 400);
      }
      this.rewardJobs.get(m.id)?.reject(new Llama2Error(m.message));
      this.rewardJobs.delete(m.id);
    } else if (m.type === 'fatal') {
      this.die(m.message);
    }
  }

  private die(message: string): void {
    if (this.fatal) return;
    this.fatal = `engine: ${message}`;
    process.stderr.write(`llama2 serve: ${this.fatal}\n`);
    this.onFatal?.();
    for (const p of this.jobs.values()) p.h.onError(this.fatal, 500);
    this.jobs.clear();
    this.inFlight = 0;
    for (const r of this.rewardJobs.values()) r.reject(new Error(this.fatal));
    this.rewardJobs.clear();
  }
}
