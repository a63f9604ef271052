/** Starts `llama2 serve` in a child process for the server tests and stops it (by its own pid). */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './cli.js';

export interface Served {
  url: string;
  proc: ChildProcess;
  /** what the server wrote to stderr so far */
  stderr: () => string;
  /** resident memory of the server process, bytes (Linux /proc) */
  rss: () => number;
  stop: () => Promise<void>;
}

/** Starts the compiled CLI with `args` (plus --port 0) and resolves once it prints its address. */
export function startServer(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Served> {
  const root = repoRoot();
  const proc = spawn(process.execPath, [join(root, 'dist', 'src', 'cli', 'main.js'), 'serve', '--port', '0', ...args], {
    cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '', err = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const orphan = () => proc.kill('SIGKILL'); // never outlive the test process
  process.once('exit', orphan);
  void exited.then(() => process.off('exit', orphan));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`llama2 serve did not start in ${timeoutMs} ms: ${err}`)); }, timeoutMs);
    const early = (code: number | null) => { clearTimeout(timer); reject(new Error(`llama2 serve exited with ${code} before listening: ${err}`)); };
    proc.once('exit', early);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      proc.off('exit', early);
      resolve({
        url: m[1]!, proc, stderr: () => err,
        rss: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'))![1]) * 1024,
        stop: async () => {
          if (proc.exitCode === null) proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(t);
        },
      });
    });
  });
}

/** Runs the CLI's serve command expecting it to fail at start: its exit code and stderr. */
export function failingServer(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const proc = spawn(process.execPath, [join(repoRoot(), 'dist', 'src', 'cli', 'main.js'), 'serve', '--port', '0', ...args], { cwd: repoRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  return new Promise((resolve) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    proc.once('exit', (code) => { clearTimeout(t); resolve({ code, stderr: err }); });
  });
}
