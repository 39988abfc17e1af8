// The studio page: forms, live charts, the results table and downloads. Every GPU job runs in the
// engine worker (worker.ts) behind a small request/response protocol (protocol.ts); this file only
// renders, so the page stays responsive during training. The kernel tab runs bench.ts in its own
// worker, loaded on first use (it carries tfjs). Test hook: ?auto=1&preset=tiny runs end to end.

import type { AdapterReport, Budget, CommandName, Commands, DataInfo, DataRequest, ForgetRequest, FromWorker, Row, TrainPoint, TrainRecipe, Arch } from './protocol.js';
import { barChart, lineChart, short, COLORS, type Series } from './charts.js';
import { requestAdapterOrExplain } from './webgpu-check.js';
import { MNIST_DIR } from './assets.js';
import type { BenchRow, BenchEvent } from './bench.js';

// ------------------------------------------------------------------------------------------------
// DOM helpers

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el as T;
};
const input = (id: string) => $<HTMLInputElement>(id);
const select = (id: string) => $<HTMLSelectElement>(id);
const num = (id: string) => Number(input(id).value);
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function setStatus(id: string, text: string, kind: '' | 'ok' | 'err' = '') {
  const el = $(id);
  el.textContent = text;
  el.className = `status ${kind}`;
}

type State = 'loading' | 'ready' | 'busy' | 'done' | 'error';
const setState = (s: State) => (document.body.dataset.state = s);

/** Shows an error in the banner and next to its control; a stop is reported as such, not as an error. */
function fail(statusId: string, err: unknown) {
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof Stopped) {
    setStatus(statusId, 'Stopped.', '');
    setState('ready');
    return;
  }
  setStatus(statusId, msg, 'err');
  const banner = $('error');
  banner.textContent = msg;
  banner.hidden = false;
  setState('error');
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

// ------------------------------------------------------------------------------------------------
// The engine worker

class Stopped extends Error {}

let worker: Worker | null = null;
let nextId = 1;
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
/** where progress events of the running job are shown */
let progressTo: { bar: string; label: string } = { bar: 'run-progress', label: 'run-phase' };

function call<K extends CommandName>(cmd: K, arg: Commands[K][0]): Promise<Commands[K][1]> {
  if (!worker) return Promise.reject(new Error('the engine worker is not running (see the message above)'));
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    worker!.postMessage({ id, cmd, arg });
  });
}

function startWorker() {
  worker = new Worker(new URL('worker.js', location.href), { type: 'module' });
  worker.onmessage = (ev: MessageEvent<FromWorker>) => {
    const m = ev.data;
    if ('event' in m) {
      if (m.event === 'progress') showProgress(m.phase, m.done, m.total);
      else onPoint(m.point);
      return;
    }
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(m.stopped ? new Stopped(m.error) : new Error(m.error));
  };
  worker.onerror = (ev) => {
    const err = new Error(`the engine worker failed: ${ev.message || 'unknown error (see the console)'}`);
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    fail('run-status', err);
  };
}

function showProgress(phase: string, done: number, total: number) {
  const bar = $<HTMLProgressElement>(progressTo.bar);
  bar.max = Math.max(1, total);
  bar.value = done;
  $(progressTo.label).textContent = `${phase} ${done}/${total}`;
}

// ------------------------------------------------------------------------------------------------
// Busy state: one long job at a time; Stop is live only during one

const JOB_BUTTONS = ['load-data', 'set-model', 'pretrain', 'set-forget', 'run', 'download-weights', 'download-json', 'download-csv'];
let busy = false;

async function job<T>(statusId: string, bar: { bar: string; label: string }, fn: () => Promise<T>): Promise<T | undefined> {
  if (busy) {
    setStatus(statusId, 'Another job is running; stop it first.', 'err');
    return undefined;
  }
  busy = true;
  clearError();
  progressTo = bar;
  setState('busy');
  for (const b of JOB_BUTTONS) $<HTMLButtonElement>(b).disabled = true;
  input('lambda').disabled = true;
  $<HTMLButtonElement>('stop').disabled = false;
  try {
    const r = await fn();
    setState('ready');
    return r;
  } catch (e) {
    fail(statusId, e);
    if (auto) throw e;
    return undefined;
  } finally {
    busy = false;
    for (const b of JOB_BUTTONS) $<HTMLButtonElement>(b).disabled = !gpuOk;
    input('lambda').disabled = !gpuOk;
    $<HTMLButtonElement>('stop').disabled = true;
  }
}

// ------------------------------------------------------------------------------------------------
// Presets

interface Preset {
  trainLimit: number;
  testLimit: number;
  downsample: number;
  arch: Arch;
  recipe: TrainRecipe;
  forgetPercent: number;
  budget: Budget;
}

const PRESETS: Record<'tiny' | 'demo', Preset> = {
  // the test preset: finishes in about a minute on Chromium's software (SwiftShader) adapter
  tiny: {
    trainLimit: 1000,
    testLimit: 300,
    downsample: 2,
    arch: { kind: 'mlp', hidden: [64] },
    recipe: { epochs: 4, lr: 0.1, momentum: 0.9, weightDecay: 5e-4, batchSize: 64 },
    forgetPercent: 10,
    budget: 'tiny',
  },
  // the CLI demo (`npm run demo`): ResNet-18 width 8 on 14x14 MNIST, 5,000 images
  demo: {
    trainLimit: 5000,
    testLimit: 1000,
    downsample: 2,
    arch: { kind: 'resnet18', width: 8, variant: 'cifar' },
    recipe: { epochs: 4, lr: 0.05, momentum: 0.9, weightDecay: 5e-4, batchSize: 128 },
    forgetPercent: 10,
    budget: 'demo',
  },
};

function applyPreset(name: string) {
  const p = PRESETS[name as 'tiny' | 'demo'];
  if (!p) return;
  select('preset').value = name;
  input('train-limit').value = String(p.trainLimit);
  input('test-limit').value = String(p.testLimit);
  select('downsample').value = String(p.downsample);
  select('arch').value = p.arch.kind;
  if (p.arch.kind === 'mlp') input('mlp-hidden').value = p.arch.hidden.join(',');
  else {
    input('resnet-width').value = String(p.arch.width);
    select('resnet-variant').value = p.arch.variant;
  }
  input('epochs').value = String(p.recipe.epochs);
  input('lr').value = String(p.recipe.lr);
  input('batch').value = String(p.recipe.batchSize);
  input('momentum').value = String(p.recipe.momentum);
  input('wd').value = String(p.recipe.weightDecay);
  input('forget-percent').value = String(p.forgetPercent);
  select('budget').value = p.budget;
  showArchFields();
}

function showArchFields() {
  const kind = select('arch').value;
  for (const el of Array.from(document.querySelectorAll<HTMLElement>('.arch-mlp'))) el.hidden = kind !== 'mlp';
  for (const el of Array.from(document.querySelectorAll<HTMLElement>('.arch-resnet18'))) el.hidden = kind !== 'resnet18';
}

// ------------------------------------------------------------------------------------------------
// GPU report

let gpuOk = false;

function showAdapter(a: AdapterReport) {
  $('adapter').innerHTML = `<b id="adapter-name">${esc(a.name)}</b> — vendor ${esc(a.vendor || '?')}, architecture ${esc(a.architecture || '?')}${a.description ? `, ${esc(a.description)}` : ''}`;
  $('features').textContent = `features: ${a.features.join(', ') || '(none)'}`;
  $('limits').innerHTML = Object.entries(a.limits)
    .sort(([x], [y]) => (x < y ? -1 : 1))
    .map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v.toLocaleString('en')}</td></tr>`)
    .join('');
  $('gpu-details').hidden = false;
}

// ------------------------------------------------------------------------------------------------
// 1. Data

let data: DataInfo | null = null;
let haveModel = false;
let originalFrom = '';

async function loadData() {
  const loaded = await job('data-status', { bar: 'run-progress', label: 'run-phase' }, async () => {
    const source = (document.querySelector<HTMLInputElement>('input[name=source]:checked')?.value ?? 'mnist') as 'mnist' | 'file';
    const common = { trainLimit: num('train-limit'), testLimit: num('test-limit'), downsample: Number(select('downsample').value) };
    let req: DataRequest;
    if (source === 'mnist') req = { kind: 'mnist', baseUrl: new URL(MNIST_DIR, location.href).href, ...common };
    else {
      const files = Array.from(input('data-file').files ?? []);
      if (files.length === 0) throw new Error('choose a file for "my data" first');
      setStatus('data-status', `reading ${files.map((f) => f.name).join(', ')}…`);
      const read = await Promise.all(files.map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })));
      req = { kind: 'files', files: read, ...common };
    }
    setStatus('data-status', 'loading…');
    data = await call('loadData', req);
    haveModel = false;
    originalFrom = '';
    resetResults();
    select('forget-class').innerHTML = data.classes.map((c, k) => `<option value="${k}">${esc(c)} (${data!.trainCounts[k]})</option>`).join('');
    picked.clear();
    gridPage = 0;
    // the grid first: "ok" means the page shows the new data (a status set earlier let a reader
    // see the previous data set's images under the new status)
    await renderGrid();
    setStatus('data-status', `${data.format} from ${data.source}: ${data.train} train / ${data.test} test images of [${data.shape.join('×')}], ${data.classes.length} classes${data.augment ? ', training with random crop + flip' : ''}.`, 'ok');
    return true;
  });
  // the model depends on the data (input size, classes); a failed load keeps the previous data and model
  if (loaded) await setModel();
}

// ------------------------------------------------------------------------------------------------
// 2. Model and checkpoint

function archFromForm(): Arch {
  if (select('arch').value === 'mlp') {
    const hidden = input('mlp-hidden').value.split(/[\s,]+/).filter(Boolean).map(Number);
    if (hidden.length === 0 || hidden.some((h) => !(Number.isInteger(h) && h > 0))) throw new Error(`hidden sizes must be positive integers separated by commas, got "${input('mlp-hidden').value}"`);
    return { kind: 'mlp', hidden };
  }
  return { kind: 'resnet18', width: num('resnet-width'), variant: select('resnet-variant').value as 'cifar' | 'imagenet' };
}

async function setModel() {
  await job('model-status', { bar: 'run-progress', label: 'run-phase' }, async () => {
    if (!data) throw new Error('load data first');
    const r = await call('setModel', archFromForm());
    haveModel = true;
    originalFrom = '';
    resetResults();
    setStatus('model-status', `${r.name}: ${r.parameters.toLocaleString('en')} parameters.`, 'ok');
    setStatus('pretrain-status', 'Not trained yet.');
  });
  if (haveModel && input('checkpoint').files?.length) await loadCheckpoint();
}

async function loadCheckpoint() {
  const file = input('checkpoint').files?.[0];
  if (!file) return;
  if (!haveModel) {
    setStatus('checkpoint-status', `${file.name} is checked once data and a model are chosen.`);
    return;
  }
  await job('checkpoint-status', { bar: 'run-progress', label: 'run-phase' }, async () => {
    setStatus('checkpoint-status', `checking ${file.name}…`);
    const r = await call('loadCheckpoint', { bytes: new Uint8Array(await file.arrayBuffer()), name: file.name });
    originalFrom = `checkpoint ${file.name}`;
    resetResults();
    setStatus('checkpoint-status', `${file.name}: all ${r.tensors} tensors match ${r.name}.`, 'ok');
    setStatus('pretrain-status', `Skipped: using ${file.name}.`, 'ok');
  });
}

// ------------------------------------------------------------------------------------------------
// 3. Pretraining, with live charts (RT's training uses the same charts)

const curves = new Map<string, { loss: Series; acc: Series; test: Series }>();
let chartRun = '';

function onPoint(p: TrainPoint) {
  let c = curves.get(p.run);
  if (!c || (p.kind === 'step' && p.done === 0)) {
    c = { loss: { name: 'train loss', x: [], y: [] }, acc: { name: 'train acc.', x: [], y: [] }, test: { name: 'test acc.', x: [], y: [], color: COLORS[1] } };
    curves.set(p.run, c);
  }
  chartRun = p.run;
  if (p.kind === 'step') {
    c.loss.x.push(p.x);
    c.loss.y.push(p.loss);
    c.acc.x.push(p.x);
    c.acc.y.push(p.accuracy);
  } else if (p.testAccuracy !== undefined) {
    c.test.x.push(p.epoch + 1);
    c.test.y.push(p.testAccuracy);
  }
  const bar = $<HTMLProgressElement>('train-progress');
  bar.max = p.total;
  bar.value = p.done;
  $('train-phase').textContent = `${p.run}: epoch ${Math.min(p.epoch + 1, p.epochs)}/${p.epochs}, loss ${short(p.loss)}, accuracy ${short(p.accuracy)}%${p.testAccuracy !== undefined ? `, test ${short(p.testAccuracy)}%` : ''}`;
  drawCurves();
}

let drawQueued = false;
function drawCurves() {
  if (drawQueued) return;
  drawQueued = true;
  requestAnimationFrame(() => {
    drawQueued = false;
    const c = curves.get(chartRun);
    if (!c) return;
    const title = chartRun === 'RT' ? 'RT (retrain on D_r)' : 'pretraining';
    $('loss-chart').innerHTML = lineChart({ title: `${title}: loss`, xLabel: 'epoch', series: [c.loss] });
    $('acc-chart').innerHTML = lineChart({ title: `${title}: accuracy (%)`, xLabel: 'epoch', series: [c.acc, c.test], yRange: [0, 100] });
  });
}

function recipeFromForm(): TrainRecipe {
  return { epochs: num('epochs'), lr: num('lr'), batchSize: num('batch'), momentum: num('momentum'), weightDecay: num('wd') };
}

async function pretrain() {
  await job('pretrain-status', { bar: 'train-progress', label: 'train-phase' }, async () => {
    if (!haveModel) throw new Error('load data and choose a model first');
    setStatus('pretrain-status', 'training…');
    curves.delete('pretrain');
    const r = await call('pretrain', recipeFromForm());
    originalFrom = 'pretrained in the page';
    resetResults();
    setStatus('pretrain-status', `Pretrained in ${short(r.seconds)} s.`, 'ok');
  });
}

// ------------------------------------------------------------------------------------------------
// 4. Forget set (class, random percentage, or clicked images)

const picked = new Set<number>();
let gridPage = 0;
const GRID = 60;

function drawImage(canvas: HTMLCanvasElement, bytes: Uint8Array, offset: number, [C, H, W]: [number, number, number]) {
  canvas.width = W;
  canvas.height = H;
  const g = canvas.getContext('2d')!;
  const img = g.createImageData(W, H);
  const hw = H * W;
  for (let p = 0; p < hw; p++) {
    for (let c = 0; c < 3; c++) img.data[p * 4 + c] = bytes[offset + (C === 1 ? 0 : c) * hw + p]!;
    img.data[p * 4 + 3] = 255;
  }
  g.putImageData(img, 0, 0);
}

async function renderGrid() {
  if (!data) return;
  const pages = Math.ceil(data.train / GRID);
  gridPage = Math.max(0, Math.min(gridPage, pages - 1));
  const start = gridPage * GRID;
  const idx = Array.from({ length: Math.min(GRID, data.train - start) }, (_, k) => start + k);
  const { images, labels, shape } = await call('images', idx);
  const size = shape[0] * shape[1] * shape[2];
  const grid = $('grid');
  grid.innerHTML = '';
  idx.forEach((i, k) => {
    const cv = document.createElement('canvas');
    drawImage(cv, images, k * size, shape);
    cv.title = `#${i}: ${data!.classes[labels[k]!]}`;
    cv.dataset.index = String(i);
    cv.classList.toggle('picked', picked.has(i));
    cv.onclick = () => {
      if (picked.has(i)) picked.delete(i);
      else picked.add(i);
      cv.classList.toggle('picked', picked.has(i));
      $('picked').textContent = String(picked.size);
      (document.querySelector<HTMLInputElement>('input[name=forget][value=indices]')!).checked = true;
    };
    grid.appendChild(cv);
  });
  $('grid-page').textContent = `images ${start}–${start + idx.length - 1} of ${data.train}`;
  $('picked').textContent = String(picked.size);
}

function forgetFromForm(): ForgetRequest {
  const mode = document.querySelector<HTMLInputElement>('input[name=forget]:checked')?.value;
  if (mode === 'class') return { kind: 'class', classes: [Number(select('forget-class').value)] };
  if (mode === 'indices') {
    if (picked.size === 0) throw new Error('click some images in the grid first (or choose another forget set)');
    return { kind: 'indices', indices: [...picked].sort((a, b) => a - b) };
  }
  return { kind: 'random', percent: num('forget-percent'), seed: 1 };
}

async function setForget(): Promise<boolean> {
  const r = await job('forget-status', { bar: 'run-progress', label: 'run-phase' }, async () => {
    if (!data) throw new Error('load data first');
    const s = await call('setForget', forgetFromForm());
    resetResults();
    setStatus('forget-status', `Forget ${s.description}: ${s.forget} samples forgotten, ${s.remain} remain (split ${s.hash}).`, 'ok');
    return true;
  });
  return r === true;
}

// ------------------------------------------------------------------------------------------------
// 5. Unlearning runs and 6. results

let rows: Row[] = [];
let originalRow: Row | null = null;

function resetResults() {
  rows = [];
  originalRow = null;
  renderResults();
  $('samples').innerHTML = '';
  $('sweep-chart').innerHTML = '';
  sweepPoints.clear();
}

const COLS: { key: keyof Row; head: string; digits: number; gap?: boolean }[] = [
  { key: 'FA', head: 'FA', digits: 2, gap: true },
  { key: 'RA', head: 'RA', digits: 2, gap: true },
  { key: 'TA', head: 'TA', digits: 2, gap: true },
  { key: 'MIA_entropy', head: 'MIA (entropy)', digits: 2, gap: true },
  { key: 'MIA_svc', head: 'MIA-eff. (SVC)', digits: 2, gap: true },
  { key: 'avgGap', head: 'Avg.D', digits: 2 },
  { key: 'kl', head: 'D_KL', digits: 4 },
  { key: 'rteMinutes', head: 'RTE (min)', digits: 3 },
];

function renderResults() {
  const wrap = $('results-wrap');
  if (rows.length === 0) {
    wrap.innerHTML = '<p class="hint">No results yet: pretrain (or load a checkpoint), choose a forget set and press Run.</p>';
    $('gap-chart').innerHTML = '';
    $('original-row').textContent = '';
    select('download-model').innerHTML = originalFrom ? '<option value="Original">Original</option>' : '';
    return;
  }
  const rt = rows[0]!;
  const head = `<tr><th>Method</th>${COLS.map((c) => `<th>${c.head}</th>`).join('')}</tr>`;
  const body = rows
    .map((r, i) => {
      const cells = COLS.map((c) => {
        const v = r[c.key] as number | undefined;
        if (v === undefined || v === null || Number.isNaN(v)) return `<td data-col="${c.key}">-</td>`;
        const gap = c.gap ? Math.abs(v - (rt[c.key] as number)) : undefined;
        const gapText = gap !== undefined && i > 0 ? ` <span class="gap">(${gap.toFixed(2)})</span>` : '';
        return `<td data-col="${c.key}" data-value="${v}"${gap !== undefined ? ` data-gap="${gap}"` : ''}>${v.toFixed(c.digits)}${gapText}</td>`;
      }).join('');
      return `<tr data-method="${esc(r.method)}"><th scope="row">${esc(r.method)}</th>${cells}</tr>`;
    })
    .join('');
  wrap.innerHTML = `<table id="results"><thead>${head}</thead><tbody>${body}</tbody></table>`;
  if (originalRow) {
    const o = originalRow;
    $('original-row').textContent = `Original (${originalFrom}, before unlearning): FA ${o.FA.toFixed(2)}, RA ${o.RA.toFixed(2)}, TA ${o.TA.toFixed(2)}, MIA ${o.MIA_entropy.toFixed(2)}, MIA-eff. ${o.MIA_svc.toFixed(2)}, Avg.D ${o.avgGap?.toFixed(2)}, D_KL ${o.kl?.toFixed(4)}.`;
  }
  const methods = rows.slice(1);
  const metrics = [
    ['FA', 'FA'],
    ['RA', 'RA'],
    ['TA', 'TA'],
    ['MIA_entropy', 'MIA'],
  ] as const;
  $('gap-chart').innerHTML = methods.length
    ? barChart({
        title: 'Gap to RT (method − RT, percentage points; 0 is best)',
        categories: methods.map((r) => r.method),
        series: metrics.map(([k, name]) => ({ name, values: methods.map((r) => (r[k] as number) - (rt[k] as number)) })),
        yLabel: 'gap (pp)',
        width: Math.max(420, 110 * methods.length + 80),
      })
    : '';
  const dl = select('download-model');
  const keep = dl.value;
  dl.innerHTML = ['Original', ...rows.map((r) => r.method)].map((m) => `<option value="${esc(m)}">${esc(m)}</option>`).join('');
  if (Array.from(dl.options).some((o) => o.value === keep)) dl.value = keep;
}

/** one row replaced (same method) or appended */
function putRow(r: Row) {
  const base = (m: string) => m.replace(/ \(.*\)$/, '');
  const k = rows.findIndex((x) => base(x.method) === base(r.method));
  if (k >= 0) rows[k] = r;
  else rows.push(r);
  renderResults();
}

async function renderSamples() {
  const s = await call('samples', undefined);
  if (!s) return;
  const { set, predictions, classes } = s;
  const size = set.shape[0] * set.shape[1] * set.shape[2];
  const head = `<tr><th>image</th><th>label</th>${predictions.map((p) => `<th>${esc(p.model)}</th>`).join('')}</tr>`;
  const table = document.createElement('table');
  table.innerHTML = head;
  set.indices.forEach((idx, k) => {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    const cv = document.createElement('canvas');
    drawImage(cv, set.images, k * size, set.shape);
    cv.title = `#${idx}`;
    td.appendChild(cv);
    tr.appendChild(td);
    tr.insertAdjacentHTML('beforeend', `<td>${esc(classes[set.labels[k]!] ?? '?')}</td>` + predictions.map((p) => {
      const c = p.preds[k]!;
      return `<td class="${c === set.labels[k] ? 'right' : 'wrong'}">${esc(classes[c] ?? String(c))} ${(100 * p.conf[k]!).toFixed(0)}%</td>`;
    }).join(''));
    table.appendChild(tr);
  });
  $('samples').innerHTML = '<p class="hint">Green: predicts the true label; red: does not. Unlearning should move these toward RT, the model that never saw them.</p>';
  $('samples').appendChild(table);
}

const selectedMethods = () => Array.from(document.querySelectorAll<HTMLInputElement>('input[name=method]:checked')).map((c) => c.value);

async function run(): Promise<boolean> {
  if (!(await setForget())) return false;
  const ok = await job('run-status', { bar: 'run-progress', label: 'run-phase' }, async () => {
    if (!originalFrom) throw new Error('pretrain first, or load a checkpoint');
    const budget = select('budget').value as Budget;
    const methods = selectedMethods();
    setStatus('run-status', 'RT: retraining on the remain set…');
    curves.delete('RT');
    const r = await call('retrain', recipeFromForm());
    rows = [r.rt];
    originalRow = r.original;
    renderResults();
    await renderSamples();
    for (const [k, name] of methods.entries()) {
      setStatus('run-status', `${name} (${k + 1}/${methods.length})…`);
      const lambda = name === 'SFR-on' ? Number(input('lambda').value) : undefined;
      const row = await call('runMethod', { name, budget, lambda });
      putRow(row);
      if (name === 'SFR-on' && lambda !== undefined) addSweepPoint(lambda, row);
      await renderSamples();
    }
    setStatus('run-status', `Done: RT and ${methods.length} method(s).`, 'ok');
    return true;
  });
  if (ok) setState('done');
  return ok === true;
}

// λ slider: reruns SFR-on alone against the same RT
const sweepPoints = new Map<number, Row>();
function addSweepPoint(lambda: number, r: Row) {
  sweepPoints.set(lambda, r);
  if (sweepPoints.size < 2) return;
  const ls = [...sweepPoints.keys()].sort((a, b) => a - b);
  const rt = rows[0]!;
  const series: Series[] = (['FA', 'RA', 'TA'] as const).flatMap((k, i) => [
    { name: `SFR-on ${k}`, x: ls, y: ls.map((l) => sweepPoints.get(l)![k]), color: COLORS[i] },
    { name: `RT ${k}`, x: [ls[0]!, ls.at(-1)!], y: [rt[k], rt[k]], color: COLORS[i], dashed: true, legend: false },
  ]);
  $('sweep-chart').innerHTML = lineChart({ title: 'SFR-on vs λ (dashed: RT)', xLabel: 'λ', series, width: 520, height: 240 }) +
    lineChart({ title: 'D_KL to RT vs λ', xLabel: 'λ', series: [{ name: 'D_KL', x: ls, y: ls.map((l) => sweepPoints.get(l)!.kl ?? NaN), color: COLORS[3] }], width: 360, height: 240 });
}

async function rerunSfr() {
  const lambda = Number(input('lambda').value);
  if (rows.length === 0) {
    setStatus('lambda-status', `λ = ${lambda} is used by the next run.`);
    return;
  }
  await job('lambda-status', { bar: 'run-progress', label: 'run-phase' }, async () => {
    setStatus('lambda-status', `rerunning SFR-on with λ = ${lambda}…`);
    const row = await call('runMethod', { name: 'SFR-on', budget: select('budget').value as Budget, lambda });
    putRow(row);
    addSweepPoint(lambda, row);
    await renderSamples();
    setStatus('lambda-status', `SFR-on rerun with λ = ${lambda}.`, 'ok');
  });
}

// ------------------------------------------------------------------------------------------------
// Downloads

function download(name: string, content: Uint8Array | string, type: string) {
  const blob = new Blob([content as BlobPart], { type });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

const fileSafe = (s: string) => s.replace(/[^A-Za-z0-9_.-]+/g, '_');

// ------------------------------------------------------------------------------------------------
// Kernel benchmark tab (own worker; tfjs is bundled into it only)

let bench: Worker | null = null;

async function runBench(size: string): Promise<boolean> {
  if (busy) {
    setStatus('bench-status', 'Another job is running; stop it first.', 'err');
    return false;
  }
  busy = true;
  clearError();
  setState('busy');
  $<HTMLButtonElement>('bench-run').disabled = true;
  const results: BenchRow[] = [];
  try {
    bench ??= new Worker(new URL('bench.js', location.href), { type: 'module' });
    const w = bench;
    await new Promise<void>((resolve, reject) => {
      w.onmessage = (ev: MessageEvent<BenchEvent>) => {
        const m = ev.data;
        if (m.kind === 'progress') {
          const bar = $<HTMLProgressElement>('bench-progress');
          bar.max = m.total;
          bar.value = m.done;
          $('bench-phase').textContent = m.phase;
        } else if (m.kind === 'adapter') setStatus('bench-status', `adapter: ${m.name} (tfjs-backend-webgpu on the same adapter)`);
        else if (m.kind === 'row') {
          results.push(m.row);
          renderBench(results);
        } else if (m.kind === 'done') resolve();
        else reject(new Error(m.message));
      };
      w.onerror = (ev) => reject(new Error(`the benchmark worker failed: ${ev.message || 'unknown error'}`));
      w.postMessage({ size });
    });
    setStatus('bench-status', `${$('bench-status').textContent} — done.`, 'ok');
    setState('done');
    return true;
  } catch (e) {
    fail('bench-status', e);
    return false;
  } finally {
    busy = false;
    $<HTMLButtonElement>('bench-run').disabled = !gpuOk;
  }
}

function renderBench(results: BenchRow[]) {
  const head = '<tr><th>kernel</th><th>shape</th><th>GFLOP</th><th>ours (ms)</th><th>tfjs (ms)</th><th>ours GFLOP/s</th><th>tfjs GFLOP/s</th><th>speed-up</th><th>max rel. diff</th></tr>';
  const body = results
    .map((r) => `<tr data-kernel="${esc(r.kernel)}"><th scope="row">${esc(r.kernel)}</th><td>${esc(r.shape)}</td><td>${(r.flops / 1e9).toFixed(3)}</td><td>${r.oursMs.toFixed(3)}</td><td>${r.tfjsMs.toFixed(3)}</td><td>${(r.flops / r.oursMs / 1e6).toFixed(2)}</td><td>${(r.flops / r.tfjsMs / 1e6).toFixed(2)}</td><td>${(r.tfjsMs / r.oursMs).toFixed(2)}×</td><td>${r.relDiff.toExponential(1)}</td></tr>`)
    .join('');
  $('bench-wrap').innerHTML = `<table id="bench-results">${head}${body}</table>`;
  $('bench-chart').innerHTML = barChart({
    title: 'Throughput (GFLOP/s, higher is better)',
    categories: results.map((r) => `${r.kernel} ${r.shape}`),
    series: [
      { name: 'this engine', values: results.map((r) => r.flops / r.oursMs / 1e6) },
      { name: 'tfjs-webgpu', values: results.map((r) => r.flops / r.tfjsMs / 1e6), color: COLORS[4] },
    ],
    yLabel: 'GFLOP/s',
    width: Math.max(480, 130 * results.length + 80),
  });
}

// ------------------------------------------------------------------------------------------------
// Wiring and start-up

const params = new URLSearchParams(location.search);
const auto = params.get('auto');

function wire() {
  for (const t of Array.from(document.querySelectorAll<HTMLButtonElement>('.tab')))
    t.onclick = () => {
      for (const u of Array.from(document.querySelectorAll<HTMLButtonElement>('.tab'))) u.classList.toggle('active', u === t);
      $('tab-unlearn').hidden = t.dataset.tab !== 'unlearn';
      $('tab-kernels').hidden = t.dataset.tab !== 'kernels';
    };
  select('preset').onchange = () => applyPreset(select('preset').value);
  for (const id of ['train-limit', 'test-limit', 'downsample', 'arch', 'mlp-hidden', 'resnet-width', 'resnet-variant', 'epochs', 'lr', 'batch'])
    $(id).addEventListener('change', () => (select('preset').value = 'custom'));
  select('arch').onchange = () => {
    select('preset').value = 'custom';
    showArchFields();
  };
  input('data-file').onchange = () => ((document.querySelector<HTMLInputElement>('input[name=source][value=file]')!).checked = true);
  $('load-data').onclick = () => void loadData();
  $('set-model').onclick = () => void setModel();
  input('checkpoint').onchange = () => void loadCheckpoint();
  $('pretrain').onclick = () => void pretrain();
  $('set-forget').onclick = () => void setForget();
  $('run').onclick = () => void run();
  $('stop').onclick = () => worker?.postMessage({ id: 0, cmd: 'stop' });
  $('grid-prev').onclick = () => ((gridPage -= 1), void renderGrid());
  $('grid-next').onclick = () => ((gridPage += 1), void renderGrid());
  $('grid-clear').onclick = () => (picked.clear(), void renderGrid());
  input('lambda').oninput = () => ($('lambda-value').textContent = input('lambda').value);
  input('lambda').onchange = () => void rerunSfr();
  $('download-weights').onclick = () =>
    void job('run-status', { bar: 'run-progress', label: 'run-phase' }, async () => {
      const which = select('download-model').value;
      if (!which) throw new Error('nothing to download yet');
      download(`${fileSafe(which)}.safetensors`, await call('modelFile', which.replace(/ \(.*\)$/, '')), 'application/octet-stream');
    });
  $('download-json').onclick = () => void job('run-status', { bar: 'run-progress', label: 'run-phase' }, async () => download('unlearning-report.json', await call('report', 'json'), 'application/json'));
  $('download-csv').onclick = () => void job('run-status', { bar: 'run-progress', label: 'run-phase' }, async () => download('unlearning-report.csv', await call('report', 'csv'), 'text/csv'));
  $('bench-run').onclick = () => void runBench(select('bench-size').value);
}

async function start() {
  wire();
  applyPreset(params.get('preset') ?? 'demo');
  // any other parameter named like a form field sets it, e.g. ?preset=tiny&arch=resnet18&resnet-width=4
  for (const [k, v] of params) {
    // a radio group by name: ?forget=class&forget-class=3, ?source=mnist
    const radio = document.querySelector<HTMLInputElement>(`input[type=radio][name="${CSS.escape(k)}"][value="${CSS.escape(v)}"]`);
    if (radio) radio.checked = true;
    const el = document.getElementById(k);
    if (['auto', 'preset', 'size'].includes(k) || !(el instanceof HTMLInputElement || el instanceof HTMLSelectElement) || el.type === 'file') continue;
    el.value = v;
    if (k !== 'budget' && k !== 'lambda') select('preset').value = 'custom';
  }
  $('lambda-value').textContent = input('lambda').value;
  showArchFields();
  renderResults();
  for (const b of [...JOB_BUTTONS, 'bench-run']) $<HTMLButtonElement>(b).disabled = true;
  try {
    // checked here first, so a browser without WebGPU gets the message without starting a worker
    await requestAdapterOrExplain(navigator.gpu);
    startWorker();
    showAdapter(await call('init', undefined));
    gpuOk = true;
  } catch (e) {
    $('adapter').textContent = 'No WebGPU: nothing can run on this page.';
    fail('adapter', e);
    return;
  }
  for (const b of [...JOB_BUTTONS, 'bench-run']) $<HTMLButtonElement>(b).disabled = false;
  setState('ready');
  if (auto === 'bench') {
    (document.querySelector<HTMLButtonElement>('.tab[data-tab=kernels]')!).click();
    await runBench(params.get('size') ?? 'small');
    return;
  }
  if (!auto) {
    await loadData();
    return;
  }
  // ?auto=1: the whole pipeline with the chosen preset, as the buttons would run it
  try {
    await loadData();
    if (!data || !haveModel) throw new Error($('error').textContent || 'loading data failed');
    await pretrain();
    if (!(await run())) throw new Error($('error').textContent || 'the run failed');
    setState('done');
  } catch (e) {
    fail('run-status', e);
  }
}

void start();
