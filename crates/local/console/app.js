// The runpod-local console: sends requests to this endpoint's client API and shows jobs as they
// run. Whatever comes from a job (output, chunks, errors, logs) is put in the page as text
// (textContent), never parsed as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
const KEY_STORE = 'runpod-local-api-key';
const FINAL = ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT'];
const RETRYABLE = ['FAILED', 'TIMED_OUT'];

const state = {
  endpoint: '', // "/v2/<endpoint id>"
  keyRequired: false,
  logs: false, // a worker in the same process sends its log lines (--serve-api)
  key: sessionStorage.getItem(KEY_STORE) || '', // this tab only
  connected: false, // the endpoint accepted the key (or needs none)
  job: null, // the job shown: {id, status, progress, t0}
  watch: null, // AbortController of that job's event stream
  checks: 0, // sequence number of request checks: only the latest one is shown
  poll: 0,
};

// ---------------------------------------------------------------- talking to the endpoint

class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body; // the JSON answer, if any
  }
}

// fetch() with the API key; throws an ApiError carrying the endpoint's {"error"} message.
async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = {};
  if (state.key) headers.Authorization = 'Bearer ' + state.key;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body, signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'cannot reach runpod-local (' + e.message + ')');
  }
  if (res.ok) return res;
  const text = await res.text();
  let message = text || res.statusText;
  let json;
  try {
    json = JSON.parse(text);
    message = json.error || message;
  } catch {}
  if (res.status === 401) keyRefused(message);
  throw new ApiError(res.status, message, json);
}

const getJson = async (path, opts) => (await api(path, opts)).json();
const post = (path, body) => getJson(path, { method: 'POST', body });
const jobPath = (route, id) => `${state.endpoint}/${route}/${encodeURIComponent(id)}`;

// ---------------------------------------------------------------- the API key

function keyRefused(message) {
  state.connected = false;
  $('key-form').hidden = false;
  const error = $('key-error');
  error.hidden = !state.key;
  error.textContent = state.key
    ? `Wrong API key: the endpoint refused it (${message}). Use the key runpod-local was started with (--api-key or RUNPOD_LOCAL_API_KEY).`
    : '';
  $('key-input').focus();
}

$('key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  state.key = $('key-input').value.trim();
  $('key-input').value = '';
  sessionStorage.setItem(KEY_STORE, state.key);
  connect();
});

$('key-change').addEventListener('click', () => {
  $('key-form').hidden = false;
  $('key-error').hidden = true;
  $('key-input').focus();
});

// ---------------------------------------------------------------- start-up

async function start() {
  let info;
  try {
    info = await getJson('/console/info');
  } catch (e) {
    showCheck(false, e.message);
    return;
  }
  state.endpoint = '/v2/' + encodeURIComponent(info.endpointId);
  state.keyRequired = info.keyRequired;
  $('endpoint-id').textContent = info.endpointId;
  state.logs = info.logs;
  SchemaForm.init(info.inputSchema ?? null, formChanged);
  $('form-box').hidden = !SchemaForm.enabled();
  if (state.keyRequired && !state.key) keyRefused('');
  else connect();
}

// Loads the first request (this also tries the key), then starts the live views.
async function connect() {
  let first;
  try {
    first = await getJson('/console/api/request');
  } catch (e) {
    if (e.status !== 401) showCheck(false, e.message);
    return;
  }
  state.connected = true;
  $('key-form').hidden = true;
  $('key-error').hidden = true;
  $('key-change').hidden = !state.keyRequired;
  if (!$('editor').value.trim()) $('editor').value = first.text;
  $('source').textContent = first.source ? 'from ' + first.source : first.note || '';
  syncForm();
  checkSoon(0);
  refreshJobs();
}

// ---------------------------------------------------------------- the request

// The body to send: the editor's JSON object with the webhook, policy and s3Config fields set.
// Throws an Error saying what is wrong when the editor does not hold a JSON object.
function composeRequest() {
  let body;
  try {
    body = JSON.parse($('editor').value);
  } catch (e) {
    throw new Error('Not valid JSON: ' + e.message);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new Error('The request must be a JSON object, like {"input": {...}}.');
  }
  const text = (id) => $(id).value.trim();
  if (text('webhook')) body.webhook = text('webhook');
  const policy = {};
  if (text('execution-timeout')) policy.executionTimeout = Number(text('execution-timeout'));
  if (text('ttl')) policy.ttl = Number(text('ttl'));
  if ($('low-priority').checked) policy.lowPriority = true;
  if (Object.keys(policy).length) body.policy = { ...body.policy, ...policy };
  const s3 = {};
  const s3Fields = [['accessId', 's3-access-id'], ['accessSecret', 's3-access-secret'],
    ['bucketName', 's3-bucket'], ['endpointUrl', 's3-endpoint']];
  for (const [name, id] of s3Fields) if (text(id)) s3[name] = text(id);
  if (Object.keys(s3).length) body.s3Config = s3;
  return JSON.stringify(body);
}

// ---------------------------------------------------------------- the form (form.js)

// Rebuilds the form from the editor's request; with no usable request, says why instead.
function syncForm() {
  if (!SchemaForm.enabled()) return;
  let body;
  try {
    body = JSON.parse($('editor').value);
  } catch {}
  const usable = body !== null && typeof body === 'object' && !Array.isArray(body);
  $('form').hidden = !usable;
  $('form-note').hidden = usable;
  $('form-note').textContent = usable ? '' : 'The form follows the JSON below once it is a valid request ({"input": ...}).';
  if (usable) SchemaForm.render($('form'), body.input);
}

// The form was edited: its input goes into the editor's request (other keys kept).
function formChanged() {
  let body;
  try {
    body = JSON.parse($('editor').value);
  } catch {}
  if (body === null || typeof body !== 'object' || Array.isArray(body)) body = {};
  body.input = SchemaForm.value();
  $('editor').value = JSON.stringify(body, null, 2) + '\n';
  checkSoon();
}

for (const event of ['input', 'change']) $('form').addEventListener(event, formChanged);

function showCheck(ok, message) {
  const check = $('check');
  check.className = 'check ' + (ok ? 'ok' : 'error');
  check.textContent = message;
  check.setAttribute('aria-busy', 'false');
}

// Checks the request: its JSON here, then everything else with the endpoint's own checks
// (POST /console/api/check runs the code /run runs). Returns the body, or null when invalid.
async function checkRequest() {
  const seq = ++state.checks;
  let body;
  try {
    body = composeRequest();
  } catch (e) {
    showCheck(false, e.message);
    return null;
  }
  if (!state.connected) {
    showCheck(false, 'Enter the API key to check and send requests.');
    return null;
  }
  try {
    await post('/console/api/check', body);
    if (seq === state.checks) {
      showCheck(true, 'Valid request');
      SchemaForm.showErrors([]);
    }
    return body;
  } catch (e) {
    if (seq === state.checks) {
      showCheck(false, e.message);
      // The worker's schema: each violation next to its field.
      SchemaForm.showErrors(e.body?.violations || []);
    }
    return null;
  }
}

let checkTimer = 0;
function checkSoon(delay = 300) {
  $('check').setAttribute('aria-busy', 'true');
  clearTimeout(checkTimer);
  checkTimer = setTimeout(checkRequest, delay);
}

$('editor').addEventListener('input', syncForm);
for (const event of ['input', 'change']) {
  $('editor').addEventListener(event, () => checkSoon());
  $('options').addEventListener(event, () => checkSoon());
}
$('editor').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    send(false);
  } else if (e.key === 'Tab' && !e.shiftKey) {
    e.preventDefault();
    document.execCommand('insertText', false, '  ');
  }
});
$('format').addEventListener('click', () => {
  try {
    $('editor').value = JSON.stringify(JSON.parse($('editor').value), null, 2) + '\n';
    syncForm();
  } catch (e) {
    showCheck(false, 'Not valid JSON: ' + e.message);
  }
});

// Run (/run) or Run sync (/runsync).
async function send(sync) {
  const body = await checkRequest();
  if (body === null) {
    $('editor').focus();
    return;
  }
  for (const b of [$('run'), $('runsync')]) b.disabled = true;
  const t0 = performance.now();
  try {
    if (sync) {
      openJob(null);
      setBadge('WAITING', 'waiting for the /runsync answer');
    }
    const answer = await post(`${state.endpoint}/${sync ? 'runsync' : 'run'}`, body);
    openJob(answer.id, answer, t0);
    refreshJobs();
  } catch (e) {
    if (sync) setBadge('', '');
    showCheck(false, `The endpoint refused the request (${e.status || 'no answer'}): ${e.message}`);
  } finally {
    for (const b of [$('run'), $('runsync')]) b.disabled = false;
  }
}

$('run').addEventListener('click', () => send(false));
$('runsync').addEventListener('click', () => send(true));

// ---------------------------------------------------------------- one job

// Shows job `id` (null: a /runsync answer is awaited) and follows it; `first` is an answer
// already in hand; the timeline counts from `t0` (when the request was sent).
function openJob(id, first, t0 = performance.now()) {
  if (state.watch) state.watch.abort();
  state.watch = null;
  state.job = { id, status: null, progress: undefined, t0 };
  $('job-empty').hidden = true;
  $('job').hidden = false;
  $('job-id').textContent = id || '';
  setBadge('');
  for (const list of ['timeline', 'chunks', 'logs']) $(list).replaceChildren();
  for (const box of ['stream-box', 'output-box', 'error-box']) $(box).hidden = true;
  $('logs-box').hidden = !state.logs;
  $('job-message').textContent = '';
  for (const t of ['delay-time', 'execution-time', 'worker-id']) $(t).textContent = '–';
  $('cancel').disabled = $('retry').disabled = true;
  markOpenRow();
  if (id === null) return;
  if (first) renderJob(first);
  watch(id);
}

function setBadge(status, title) {
  const badge = $('job-status');
  badge.hidden = !status;
  badge.textContent = status;
  badge.dataset.status = status;
  badge.title = title || '';
}

// Reads the job's server-sent events (with fetch: EventSource cannot send the API key).
async function watch(id) {
  const ctl = new AbortController();
  state.watch = ctl;
  try {
    const res = await api(`/console/api/jobs/${encodeURIComponent(id)}/events`, { signal: ctl.signal });
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const data = buffer.slice(0, end).split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).replace(/^ /, ''))
          .join('\n');
        buffer = buffer.slice(end + 2);
        if (data && state.watch === ctl) onEvent(JSON.parse(data));
      }
    }
    if (state.watch === ctl && !FINAL.includes(state.job.status)) {
      $('job-message').textContent = 'The connection to runpod-local closed before the job ended.';
    }
  } catch (e) {
    if (e.name !== 'AbortError' && state.watch === ctl) $('job-message').textContent = e.message;
  }
}

function onEvent(event) {
  renderJob(event.job);
  for (const chunk of event.stream) addChunk(chunk);
  for (const line of event.logs) addLog(line);
}

function renderJob(job) {
  const seen = state.job;
  if (job.status !== seen.status) {
    seen.status = job.status;
    addStep(job.status);
    refreshJobs();
  }
  setBadge(job.status);
  const final = FINAL.includes(job.status);
  if (job.delayTime !== undefined) $('delay-time').textContent = duration(job.delayTime);
  if (job.executionTime !== undefined) $('execution-time').textContent = duration(job.executionTime);
  if (job.workerId) $('worker-id').textContent = job.workerId;
  // While the job runs, `output` is its latest progress update.
  if (job.status === 'IN_PROGRESS' && job.output !== undefined) {
    const progress = JSON.stringify(job.output);
    if (progress !== seen.progress) {
      seen.progress = progress;
      addStep('progress', progress);
    }
  }
  if (final && job.output !== undefined) {
    $('output').textContent = JSON.stringify(job.output, null, 2);
    $('output-box').hidden = false;
  }
  if (job.error) showError(job.error);
  $('cancel').disabled = final;
  $('retry').disabled = !RETRYABLE.includes(job.status);
}

// A timeline entry: a status, or a progress update, with the time since the job was opened.
function addStep(what, detail) {
  const li = document.createElement('li');
  const time = document.createElement('span');
  time.className = 'time';
  time.textContent = '+' + ((performance.now() - state.job.t0) / 1000).toFixed(2) + ' s';
  const name = document.createElement('span');
  name.className = 'badge step';
  name.dataset.status = what;
  name.textContent = what;
  li.append(time, name);
  if (detail !== undefined) {
    const code = document.createElement('code');
    code.textContent = detail;
    li.append(code);
  }
  $('timeline').append(li);
}

function addChunk(chunk) {
  const li = document.createElement('li');
  li.textContent = typeof chunk === 'string' ? chunk : JSON.stringify(chunk);
  $('chunks').append(li);
  $('stream-box').hidden = false;
}

function addLog(line) {
  const text = `+${(line.atMs / 1000).toFixed(3)} s  ${line.level.padEnd(5)}  ${line.message}\n`;
  $('logs').append(text);
  $('logs-box').hidden = false;
}

// A worker's error is often the Python SDK's JSON report: show its message and traceback.
function showError(raw) {
  let message = raw;
  let traceback = '';
  try {
    const report = JSON.parse(raw);
    if (report && typeof report.error_message === 'string') {
      message = (report.error_type ? report.error_type + ': ' : '') + report.error_message;
      if (report.error_traceback !== report.error_message) traceback = report.error_traceback || '';
    }
  } catch {}
  $('error-message').textContent = message;
  $('traceback').textContent = traceback;
  $('traceback').hidden = !traceback;
  $('error-box').hidden = false;
}

$('cancel').addEventListener('click', async () => {
  try {
    renderJob(await post(jobPath('cancel', state.job.id)));
  } catch (e) {
    $('job-message').textContent = 'Cancel failed: ' + e.message;
  }
});

$('retry').addEventListener('click', async () => {
  const id = state.job.id;
  try {
    openJob(id, await post(jobPath('retry', id)));
  } catch (e) {
    $('job-message').textContent = 'Retry failed: ' + e.message;
  }
});

// ---------------------------------------------------------------- requests list and health

// Polled every second: the health also changes with time alone (a silent worker is lost after
// its grace period), and one small request a second costs nothing locally.
async function refreshJobs() {
  clearTimeout(state.poll);
  if (!state.connected) return;
  try {
    const answer = await getJson('/console/api/jobs');
    renderHealth(answer.health);
    renderJobs(answer.jobs, answer.total);
  } catch (e) {
    if (e.status === 401) return;
    renderHealth(null, e.message);
  }
  state.poll = setTimeout(refreshJobs, 1000);
}

function renderHealth(health, error) {
  const items = error
    ? [['error', error]]
    : [
        ['workers', `${health.workers.idle} idle · ${health.workers.running} running` +
          (health.workers.unhealthy ? ` · ${health.workers.unhealthy} unhealthy` : '')],
        ['in queue', health.jobs.inQueue],
        ['in progress', health.jobs.inProgress],
        ['completed', health.jobs.completed],
        ['failed', health.jobs.failed],
      ];
  const noWorker = health && health.workers.idle + health.workers.running === 0;
  $('health').replaceChildren(...items.map(([name, value]) => {
    const li = document.createElement('li');
    li.dataset.name = name;
    if (name === 'workers' && noWorker) {
      li.className = 'warn';
      li.title = 'No worker is taking jobs from this endpoint: jobs wait in the queue.';
    }
    const b = document.createElement('b');
    b.textContent = value;
    li.append(name + ' ', b);
    return li;
  }));
}

// Updates the rows in place (a row keeps its element while its job is listed), so that a
// click is never lost to a refresh.
function renderJobs(jobs, total) {
  $('jobs-empty').hidden = jobs.length > 0;
  $('jobs-total').textContent = total > jobs.length ? `newest ${jobs.length} of ${total}` : '';
  const tbody = $('jobs');
  const old = new Map([...tbody.children].map((tr) => [tr.dataset.id, tr]));
  const rows = jobs.map((job) => {
    const tr = old.get(job.id) || newRow(job.id);
    const cells = [job.id, job.status, ago(job.ageMs), duration(job.delayTime),
      duration(job.executionTime), job.workerId || '–'];
    cells.forEach((text, i) => {
      const el = i === 1 ? tr.children[1].firstChild : tr.children[i];
      if (el.textContent !== text) el.textContent = text;
      if (i === 1) el.dataset.status = text;
    });
    return tr;
  });
  const same = rows.length === tbody.children.length && rows.every((tr, i) => tbody.children[i] === tr);
  if (!same) tbody.replaceChildren(...rows);
  markOpenRow();
}

function newRow(id) {
  const tr = document.createElement('tr');
  tr.dataset.id = id;
  tr.tabIndex = 0;
  for (let i = 0; i < 6; i++) tr.append(document.createElement('td'));
  tr.children[0].title = id;
  const badge = document.createElement('span');
  badge.className = 'badge';
  tr.children[1].append(badge);
  return tr;
}

function markOpenRow() {
  for (const tr of $('jobs').children) tr.classList.toggle('open', tr.dataset.id === state.job?.id);
}

function openRow(e) {
  const tr = e.target.closest('tr');
  if (tr && (e.type === 'click' || e.key === 'Enter')) openJob(tr.dataset.id);
}
$('jobs').addEventListener('click', openRow);
$('jobs').addEventListener('keydown', openRow);

// ---------------------------------------------------------------- formatting

function duration(ms) {
  if (ms === undefined || ms === null) return '–';
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function ago(ms) {
  const s = Math.round(ms / 1000);
  if (s < 2) return 'just now';
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

start();
