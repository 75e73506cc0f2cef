// The demo page: loads the shipped Fashion-MNIST model with cdnv2/browser (served from dist/) and classifies a
// picked, dropped or sample image. Plain ESM, no build step. The result list carries the exact scores in data-*
// attributes (test/browser.test.ts reads them).
import { Cdnv2Error, detectIsa, loadModelUrl, supportedIsas, toPixels } from '../dist/runtime/browser.js';

const MODEL_URL = new URL('../models/cdnv2-fmnist.cnv2', import.meta.url);
// The shipped samples (models/samples/); the browser test checks this list against the directory.
const SAMPLES = [
  '00-ankle-boot.png', '01-pullover.png', '02-trouser.png', '03-trouser.png',
  '04-shirt.png', '05-trouser.png', '06-coat.png', '07-shirt.png',
];
const ISA_NAMES = { relaxed: 'relaxed SIMD (FMA)', simd: 'SIMD128', scalar: 'scalar (no SIMD)' };

const $ = (id) => document.getElementById(id);
const results = $('results');
const preview = $('preview');
let model = null;
let loading = null;
let run = 0;

function setStatus(text, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
}

function describeError(err) {
  return err instanceof Cdnv2Error ? `${err.message} (${err.code})` : String(err?.message ?? err);
}

async function load(isa) {
  results.dataset.state = 'loading';
  setStatus('Loading the model…');
  model?.dispose();
  model = null;
  const t0 = performance.now();
  model = await loadModelUrl(MODEL_URL, isa ? { isa } : {});
  const ms = performance.now() - t0;
  // One run on a blank input first, so the latency shown is a warm run's and not V8's first-call compile.
  model.engine.run(new Float32Array(model.engine.inputLength));
  const [c, h, w] = model.meta.inputShape;
  $('model-info').textContent = `${model.meta.name} · input ${c}×${h}×${w} · ${model.meta.labels.length} classes · ` +
    `${(model.engine.arenaBytes / 1024).toFixed(0)} KiB activations · loaded in ${ms.toFixed(1)} ms`;
  $('isa').textContent = ISA_NAMES[model.isa];
  results.dataset.isa = model.isa;
  results.dataset.state = 'ready';
  setStatus('');
}

function show(predictions, ms, readMs, name) {
  results.replaceChildren(...predictions.map((p) => {
    const li = document.createElement('li');
    Object.assign(li.dataset, { index: String(p.index), label: p.label, score: String(p.score) });
    const label = Object.assign(document.createElement('span'), { className: 'label', textContent: p.label });
    const bar = Object.assign(document.createElement('span'), { className: 'bar' });
    const fill = document.createElement('i');
    fill.style.width = `${(p.score * 100).toFixed(2)}%`;
    bar.append(fill);
    const score = Object.assign(document.createElement('span'), { className: 'score', textContent: `${(p.score * 100).toFixed(2)}%` });
    li.append(label, bar, score);
    return li;
  }));
  $('latency').textContent = `${ms.toFixed(2)} ms`;
  $('read-time').textContent = `+ ${readMs.toFixed(2)} ms reading the image`;
  Object.assign(results.dataset, { state: 'done', source: name, latencyMs: String(ms), readMs: String(readMs), run: String(++run) });
  setStatus(`${name}: ${predictions[0].label}`);
}

/**
 * Classifies an <img> element or a File. Latency is the model's part (preprocessing in wasm and the network);
 * getting the pixels out of the browser (decoding, drawing on a canvas) is timed apart, as it varies by source.
 */
async function classify(source, name) {
  try {
    await loading;
    if (!model) throw new Error('the model did not load');
    results.dataset.state = 'running';
    const t0 = performance.now();
    const pixels = await toPixels(source);
    const t1 = performance.now();
    const top = await model.classify(pixels, 5);
    show(top, performance.now() - t1, t1 - t0, name);
  } catch (err) {
    results.replaceChildren();
    Object.assign(results.dataset, { state: 'error', source: name, run: String(++run) });
    setStatus(`${name}: ${describeError(err)}`, true);
  }
}

function showPreview(src) {
  preview.src = src;
  preview.hidden = false;
  $('drop-hint').textContent = 'Drop another image or choose a file';
}

function classifyFile(file) {
  if (!file) return;
  document.querySelectorAll('#samples button').forEach((b) => b.classList.remove('active'));
  if (preview.src.startsWith('blob:')) URL.revokeObjectURL(preview.src);
  showPreview(URL.createObjectURL(file));
  return classify(file, file.name);
}

for (const name of SAMPLES) {
  const button = document.createElement('button');
  button.type = 'button';
  button.dataset.sample = name;
  const img = Object.assign(new Image(), { src: new URL(`../models/samples/${name}`, import.meta.url).href, alt: '' });
  const caption = name.replace(/^\d+-|\.png$/g, '').replace(/-/g, ' ');
  button.append(img, caption);
  button.addEventListener('click', () => {
    document.querySelectorAll('#samples button').forEach((b) => b.classList.toggle('active', b === button));
    showPreview(img.src);
    classify(img, name);
  });
  $('samples').append(button);
}

$('file').addEventListener('change', (e) => classifyFile(e.target.files?.[0]));
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  classifyFile(e.dataTransfer?.files?.[0]);
});

const select = $('isa-select');
const supported = supportedIsas();
for (const option of select.options) {
  if (option.value && !supported.includes(option.value)) {
    option.disabled = true;
    option.textContent += ' (unsupported here)';
  }
}
select.options[0].textContent = `auto (${ISA_NAMES[detectIsa()]})`;
const forced = new URLSearchParams(location.search).get('isa') ?? '';
select.value = forced;
select.addEventListener('change', () => {
  const params = new URLSearchParams(location.search);
  if (select.value) params.set('isa', select.value); else params.delete('isa');
  history.replaceState(null, '', `${location.pathname}${params.size ? `?${params}` : ''}`);
  loading = load(select.value).catch(fail);
});

function fail(err) {
  results.dataset.state = 'error';
  setStatus(`Cannot load the model: ${describeError(err)}`, true);
}
loading = load(forced).catch(fail);
