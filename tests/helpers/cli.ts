/** Runs the `llama2` CLI in a child process, compiled (dist/) or from source through tsx. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export function repoRoot(): string {
  const here = new URL('.', import.meta.url).pathname;
  return here.includes('/dist/') ? here.slice(0, here.indexOf('/dist/')) : here.replace(/\/tests\/helpers\/$/, '');
}

export function fixture(...p: string[]): string {
  return join(repoRoot(), 'tests', 'fixtures', ...p);
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { input?: string; env?: Record<string, string> } = {}): CliResult {
  const here = new URL('.', import.meta.url).pathname;
  const compiled = here.includes('/dist/');
  const root = repoRoot();
  const argv = compiled
    ? [join(root, 'dist', 'src', 'cli', 'main.js'), ...args]
    : ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), ...args];
  const r = spawnSync(process.execPath, argv, {
    input: opts.input ?? '',
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
    timeout: 120_000,
    cwd: root,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
