// The chat page's logic (web/index.html): streams answers from /v1/chat/completions (SSE), keeps
// the multi-turn history, and in compare mode asks for two answers per turn (two models, or one
// model at two seeds), records the person's choice with POST /v1/preferences and continues the
// dialog with the chosen answer. Plain browser JavaScript, no libraries.
const $ = (id) => document.getElementById(id);
const log = $('log');
let models = [];
let history = []; // {role, content} without the system prompt
let running = [];  // AbortControllers of the streams in flight
let pending = null; // compare mode: {prompt, answers: [{content, model}], els}

$('apikey').value = localStorage.getItem('llama2-apikey') ?? '';
$('apikey').addEventListener('change', () => { localStorage.setItem('llama2-apikey', $('apikey').value); loadModels(); });

function headers() {
  const h = { 'Content-Type': 'application/json' };
  if ($('apikey').value) h.Authorization = `Bearer ${$('apikey').value}`;
  return h;
}
function status(text, error = false) { $('status').textContent = text; $('status').className = error ? 'error' : ''; }

async function loadModels() {
  const r = await fetch('/v1/models', { headers: headers() });
  const body = await r.json();
  if (!r.ok) { status(body.error?.message ?? `error ${r.status}`, true); return; }
  models = body.data.map((m) => m.id);
  $('model').replaceChildren(...models.map((id) => Object.assign(document.createElement('option'), { value: id, textContent: id })));
  status(models.length > 1 ? `compare: ${models[0]} (A) vs ${models[1]} (B)` : 'ready');
}

function bubble(role, text, parent = log) {
  const el = Object.assign(document.createElement('div'), { className: `msg ${role}` });
  el.textContent = text;
  parent.appendChild(el);
  log.scrollTop = log.scrollHeight;
  return el;
}

function messages() {
  const sys = $('system').value.trim();
  return sys ? [{ role: 'system', content: sys }, ...history] : [...history];
}

/** streams one answer into `el`; resolves with the text */
async function stream(body, el, tag = '') {
  const ac = new AbortController();
  running.push(ac);
  let text = '';
  try {
    const r = await fetch('/v1/chat/completions', { method: 'POST', headers: headers(), body: JSON.stringify({ ...body, stream: true }), signal: ac.signal });
    if (!r.ok) throw new Error((await r.json()).error?.message ?? `error ${r.status}`);
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let at;
      while ((at = buf.indexOf('\n\n')) >= 0) {
        const event = buf.slice(0, at);
        buf = buf.slice(at + 2);
        const data = event.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        if (!data || data === '[DONE]') continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        text += chunk.choices?.[0]?.delta?.content ?? '';
        el.textContent = tag + text;
        log.scrollTop = log.scrollHeight;
      }
    }
  } catch (e) {
    if (e.name !== 'AbortError') { status(e.message, true); el.classList.add('error'); }
  } finally {
    running = running.filter((x) => x !== ac);
  }
  return text;
}

function params() {
  const num = (id) => ($(id).value === '' ? undefined : Number($(id).value));
  return { temperature: num('temperature'), top_p: num('top_p'), max_tokens: num('max_tokens'), seed: num('seed') };
}

function busy(on) {
  $('send').disabled = on;
  $('stop').disabled = !on;
}

async function send(text) {
  history.push({ role: 'user', content: text });
  bubble('user', text);
  busy(true);
  const p = params();
  if (!$('compare').checked) {
    const el = bubble('assistant', '');
    const answer = await stream({ model: $('model').value, messages: messages(), ...p }, el);
    history.push({ role: 'assistant', content: answer });
    busy(false);
    return;
  }
  // compare mode: two answers side by side
  const pair = Object.assign(document.createElement('div'), { className: 'pair' });
  log.appendChild(pair);
  const els = [bubble('assistant', 'A: ', pair), bubble('assistant', 'B: ', pair)];
  const seed = p.seed ?? Math.floor(Math.random() * 2 ** 31);
  const two = models.length > 1;
  const bodies = [
    { ...p, model: models[0], messages: messages(), seed },
    { ...p, model: two ? models[1] : models[0], messages: messages(), seed: seed + 1, temperature: !two && p.temperature === 0 ? 1 : p.temperature },
  ];
  const texts = await Promise.all(bodies.map((b, i) => stream(b, els[i], i ? 'B: ' : 'A: ')));
  busy(false);
  pending = { prompt: messages(), answers: texts.map((t, i) => ({ content: t, model: bodies[i].model })), els };
  $('choice').reset();
  $('choice').hidden = false;
  $('choice').querySelector('input[name=chosen]').focus();
}

$('choice').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = new FormData($('choice'));
  const chosen = Number(f.get('chosen'));
  const body = {
    prompt: pending.prompt, answers: pending.answers, chosen, level: f.get('level'),
    safe: [$('safeA').checked, $('safeB').checked], is_safety_prompt: $('unsafePrompt').checked,
  };
  const r = await fetch('/v1/preferences', { method: 'POST', headers: headers(), body: JSON.stringify(body) });
  const out = await r.json();
  if (!r.ok) { status(out.error?.message ?? `error ${r.status}`, true); return; }
  pending.els[chosen].classList.add('chosen');
  history.push({ role: 'assistant', content: pending.answers[chosen].content });
  pending = null;
  $('choice').hidden = true;
  status(`recorded (${out.meta.level}, ${out.meta.safety_bin}) in ${out.file}`);
  $('input').focus();
});

$('composer').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('input').value.trim();
  if (!text || running.length || pending) return;
  $('input').value = '';
  void send(text);
});
$('input').addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); $('composer').requestSubmit(); }
});
const stopAll = () => { for (const ac of running) ac.abort(); };
$('stop').addEventListener('click', stopAll);
document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') stopAll(); });
$('clear').addEventListener('click', () => { stopAll(); history = []; pending = null; $('choice').hidden = true; log.replaceChildren(); $('input').focus(); });
$('download').addEventListener('click', async () => {
  const r = await fetch('/v1/preferences', { headers: headers() });
  if (!r.ok) { status((await r.json()).error?.message ?? `error ${r.status}`, true); return; }
  const a = Object.assign(document.createElement('a'), { href: URL.createObjectURL(await r.blob()), download: 'prefs.jsonl' });
  a.click();
  URL.revokeObjectURL(a.href);
});

await loadModels();
$('input').focus();
