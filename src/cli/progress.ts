/** A progress bar on stderr: fraction, rate, ETA; redraws at most every 100 ms, only on a TTY. */
export class Progress {
  private readonly t0 = performance.now();
  private last = 0;
  private readonly tty = process.stderr.isTTY === true;

  constructor(private readonly label: string, private readonly total: number, private readonly unit = 'it') {}

  update(done: number, extra = ''): void {
    const now = performance.now();
    if (now - this.last < 100 && done < this.total) return;
    this.last = now;
    const el = (now - this.t0) / 1000;
    const frac = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const rate = done / Math.max(el, 1e-9);
    const eta = rate > 0 ? (this.total - done) / rate : 0;
    const width = 24;
    const fill = Math.round(frac * width);
    const line =
      `${this.label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(frac * 100).toFixed(0).padStart(3)}% ` +
      `${done}/${this.total} ${this.unit} ${rate.toFixed(1)} ${this.unit}/s ETA ${fmtTime(eta)}${extra ? ' ' + extra : ''}`;
    if (this.tty) process.stderr.write(`\r${line}\x1b[K`);
  }

  done(): void {
    if (this.tty) process.stderr.write('\n');
  }
}

export function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  const sec = Math.round(s % 60);
  return m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}
