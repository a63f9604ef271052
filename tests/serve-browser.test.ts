/**
 * The chat page in a real browser: headless Chromium (Debian's `chromium` package; .ci/run
 * installs it) driven by playwright-core. It loads the page from `llama2 serve`, sends a message
 * and sees the answer stream in, then in compare mode gets two answers, records a choice (B,
 * "better", A marked unsafe, an unsafe prompt) with the keyboard and mouse, and finds exactly that
 * record in the --prefs file through readPreferences. Without Chromium the test is skipped, loudly.
 * LLAMA2_SCREENSHOT=PATH saves a screenshot of the page (the README's docs/serve-chat.png).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { fixture } from './helpers/cli.js';
import { startServer, type Served } from './helpers/serve.js';
import { readPreferences } from '../src/data/preferences.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const have = existsSync(CHROMIUM);
if (!have) process.stderr.write(`\n*** serve-browser: SKIPPED — no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH) ***\n\n`);

const dir = mkdtempSync(join(tmpdir(), 'serve-browser-'));
const prefs = join(dir, 'prefs.jsonl');
let srv: Served;
let browser: Browser;

before(async () => {
  if (!have) return;
  srv = await startServer(['--model', fixture('gguf', 'stories15M-Q8_0.gguf'), '--prefs', prefs, '--batch', '3', '--api-key', 'page-key']);
  // (playwright gives every launch a fresh, empty --user-data-dir of its own)
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true });
});
after(async () => {
  await browser?.close();
  await srv?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('chat page: streamed answer, compare-mode choice appended to the preference file', { skip: !have && 'no Chromium' }, async () => {
  const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
  page.setDefaultTimeout(20_000);
  await page.goto(srv.url);
  await page.fill('#apikey', 'page-key');
  await page.dispatchEvent('#apikey', 'change');
  await page.waitForFunction(() => (document.querySelector('#model') as HTMLSelectElement).options.length === 1);
  await page.click('#settings summary');
  await page.fill('#system', 'You are a storyteller.');
  await page.fill('#max_tokens', '24');
  // chat: Enter sends, the answer streams into the last assistant bubble
  await page.focus('#input');
  await page.keyboard.type('Tell me a story about a red fox.');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => (document.querySelector('.msg.assistant')?.textContent ?? '').length > 10);
  await page.waitForFunction(() => !(document.querySelector('#send') as HTMLButtonElement).disabled);
  const first = await page.textContent('.msg.assistant');
  assert.ok(first && first.length > 10, `streamed text: ${first}`);

  // compare mode: two answers, then the choice form
  await page.check('#compare');
  await page.focus('#input');
  await page.keyboard.type('And what did the fox eat?');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#choice:not([hidden])');
  const [a, b] = await page.$$eval('.pair .assistant', (els) => els.map((e) => e.textContent ?? ''));
  assert.ok(a!.startsWith('A: ') && b!.startsWith('B: ') && a !== b, `two different answers: ${a} | ${b}`);
  await page.check('input[name=chosen][value="1"]');
  await page.check('input[name=level][value="better"]');
  await page.uncheck('#safeA');
  await page.check('#unsafePrompt');
  if (process.env['LLAMA2_SCREENSHOT']) await page.screenshot({ path: process.env['LLAMA2_SCREENSHOT'] });
  await page.click('#submitChoice');
  await page.waitForFunction(() => /recorded/.test(document.querySelector('#status')?.textContent ?? ''));

  const recs = [...readPreferences(prefs)];
  assert.equal(recs.length, 1);
  const r = recs[0]!;
  assert.deepEqual(r.prompt.map((m) => m.role), ['system', 'user', 'assistant', 'user']);
  assert.deepEqual(r.prompt[0], { role: 'system', content: 'You are a storyteller.' });
  assert.equal(r.prompt[1]!.content, 'Tell me a story about a red fox.');
  assert.equal(r.prompt[2]!.content, first);
  assert.equal(r.chosen, b!.slice(3));
  assert.equal(r.rejected, a!.slice(3));
  assert.equal(r.level, 'better');
  assert.deepEqual([r.meta.safety_bin, r.meta.is_safety_prompt, r.meta.batch, r.meta.source], ['safe_over_unsafe', true, 3, 'human']);
  assert.deepEqual(r.meta.models, ['stories15M-Q8_0', 'stories15M-Q8_0']);
  // the dialog goes on with the chosen answer
  assert.equal(await page.$eval('.pair .chosen', (e) => e.textContent), b);
});
