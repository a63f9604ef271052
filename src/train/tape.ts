/**
 * The autograd core of training: `Var` (a flat Float32Array with a shape and a gradient slot),
 * `Arena` (hands out the same activation buffers step after step, so a training loop allocates
 * nothing once warm) and `Tape` (records the backward closure of every fused op and replays them
 * in reverse).
 *
 * This is not a general tensor library: there are no strides, views or broadcasting. Each op in
 * ops.ts / loss.ts / reward.ts is a hand-written forward/backward pair over flat row-major
 * buffers; the tape only sequences them. Gradients of op outputs are allocated lazily (zeroed)
 * when the first consumer writes one; parameters (params.ts) carry their own persistent
 * gradient buffers, which backward accumulates into until `zeroGrads`.
 *
 * Lifetime: every buffer an op returns lives in the tape's arena and is reused after
 * `tape.reset()`. Start every step with reset() (otherwise the arena keeps growing), and copy
 * anything you keep across steps. Use one Tape per model stream (e.g. a separate non-recording
 * Tape for a frozen reference policy), since reset() recycles all of a tape's buffers.
 */
import type { Backend } from '../backend/types.js';
import { refBackend } from '../backend/ref.js';
import { numel } from '../tensor.js';

export interface Var {
  /** row-major values (a view; may be a sub-range of an arena buffer) */
  readonly data: Float32Array;
  /** d(loss)/d(data), same length; null until something writes one */
  grad: Float32Array | null;
  readonly shape: readonly number[];
  /** false for constants (and frozen weights): backward skips them */
  readonly requiresGrad: boolean;
  /** how many recorded ops read this Var (lets an op decide it may overwrite the data in backward) */
  uses: number;
}

/** A Var over existing data (inputs, frozen weights). */
export function constantVar(data: Float32Array, shape: readonly number[]): Var {
  return { data, grad: null, shape: [...shape], requiresGrad: false, uses: 0 };
}

/** A Var over existing data that receives a gradient (an input you differentiate with respect to). */
export function leafVar(data: Float32Array, shape: readonly number[]): Var {
  return { data, grad: null, shape: [...shape], requiresGrad: true, uses: 0 };
}

/**
 * Bump allocator over a list of Float32Arrays. The k-th `take` after a `reset` returns the same
 * buffer as the k-th take of the previous step (grown when a request is larger), so a loop with
 * the same shapes allocates only in its first step.
 */
export class Arena {
  private readonly bufs: Float32Array[] = [];
  private next = 0;

  /** n floats with unspecified contents. */
  take(n: number): Float32Array {
    let b = this.bufs[this.next];
    if (!b || b.length < n) {
      b = new Float32Array(n);
      this.bufs[this.next] = b;
    }
    this.next++;
    return b.length === n ? b : b.subarray(0, n);
  }

  /** n zeroed floats. */
  zeros(n: number): Float32Array {
    const b = this.take(n);
    b.fill(0);
    return b;
  }

  /** Makes every buffer available again (their contents stay until overwritten). */
  reset(): void {
    this.next = 0;
  }

  /** Bytes held by the arena. */
  get bytes(): number {
    let n = 0;
    for (const b of this.bufs) n += b.byteLength;
    return n;
  }
}

export class Tape {
  readonly arena = new Arena();
  private readonly backs: (() => void)[] = [];

  /**
   * recording = false runs ops forward only (no closures, no saved state beyond the outputs):
   * for frozen reference models and evaluation.
   */
  constructor(readonly backend: Backend = refBackend, readonly recording = true) {}

  /** A fresh op output of `shape` (contents unspecified); requires grad when any input does. */
  output(shape: readonly number[], ...inputs: Var[]): Var {
    let rg = false;
    for (const v of inputs) {
      v.uses++;
      rg ||= v.requiresGrad;
    }
    return { data: this.arena.take(numel(shape)), grad: null, shape: [...shape], requiresGrad: this.recording && rg, uses: 0 };
  }

  /** Scratch floats that live until reset (saved activations, softmax statistics). */
  scratch(n: number): Float32Array {
    return this.arena.take(n);
  }

  /** Records a backward closure; it runs only when `out` received a gradient. */
  record(out: Var, back: (dout: Float32Array) => void): void {
    if (!this.recording || !out.requiresGrad) return;
    this.backs.push(() => {
      if (out.grad) back(out.grad);
    });
  }

  /** The gradient buffer of v, allocated (zeroed) on first use. */
  grad(v: Var): Float32Array {
    if (!v.grad) v.grad = this.arena.zeros(v.data.length);
    return v.grad;
  }

  /**
   * The gradient buffer of v for a kernel that can either add into it or overwrite it (a GEMM):
   * on first use the buffer is new and not zeroed, and `accumulate` is false, so the kernel must
   * write every element. Saves a zero-fill pass over the buffer.
   */
  gradSlot(v: Var): { grad: Float32Array; accumulate: boolean } {
    if (v.grad) return { grad: v.grad, accumulate: true };
    v.grad = this.arena.take(v.data.length);
    return { grad: v.grad, accumulate: false };
  }

  /** Back-propagates `seed`·d(loss) through every recorded op (loss is a 1-element Var). */
  backward(loss: Var, seed = 1): void {
    if (loss.data.length !== 1) throw new Error(`backward: loss must have one element, got shape [${loss.shape.join(', ')}]`);
    const g = this.grad(loss);
    g[0] = g[0]! + seed;
    for (let i = this.backs.length - 1; i >= 0; i--) this.backs[i]!();
    this.backs.length = 0;
  }

  /** Forgets recorded ops and recycles every arena buffer. */
  reset(): void {
    this.backs.length = 0;
    this.arena.reset();
  }
}
