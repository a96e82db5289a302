// The viewer's page script (fcn serve): uploads an image and draws the labels the server
// predicts over it (or, with "run in this browser", those of the model run here by
// in-browser.js), with legend, opacity and the class under the pointer; shows a training
// run's curves (polled while it trains), its evaluation's IoU table, confusion matrix and
// validation grid. Plain browser JavaScript, no build step, nothing fetched from elsewhere.

const $ = (id) => document.getElementById(id);

/** Creates an element with properties and children (text or nodes); never parses HTML. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'style') Object.assign(node.style, value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

const percent = (v, digits = 1) => `${(v * 100).toFixed(digits)}%`;
const rgb = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;

/** Parses an error answer ({ error }) or says what came back. */
async function errorOf(response) {
  try {
    const body = await response.json();
    if (body && typeof body.error === 'string') return body.error;
  } catch {
    // not JSON: fall through
  }
  return `the server answered ${response.status} ${response.statusText}`;
}

async function getJson(url, init) {
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(await errorOf(response));
  return response.json();
}

// ---------- tabs ----------

let info = null;

function show(view) {
  const run = view === 'run' && info && info.run;
  $('predict-view').hidden = Boolean(run);
  $('run-view').hidden = !run;
  $('tab-predict').classList.toggle('active', !run);
  $('tab-run').classList.toggle('active', Boolean(run));
  if (run) runView.open();
  else runView.close();
}

// ---------- prediction ----------

/** The prediction shown: size, class ids, names, colours. */
let shown = null;

function decodeLabels(prediction) {
  const bytes = Uint8Array.from(atob(prediction.labels), (c) => c.charCodeAt(0));
  return prediction.bytesPerLabel === 1 ? bytes : new Int32Array(bytes.buffer);
}

function drawOverlay(prediction, ids) {
  const canvas = $('overlay');
  canvas.width = prediction.width;
  canvas.height = prediction.height;
  const context = canvas.getContext('2d');
  const image = context.createImageData(prediction.width, prediction.height);
  for (let i = 0; i < ids.length; i++) {
    const colour = prediction.palette[ids[i]] || [255, 255, 255];
    image.data[i * 4] = colour[0];
    image.data[i * 4 + 1] = colour[1];
    image.data[i * 4 + 2] = colour[2];
    image.data[i * 4 + 3] = 255;
  }
  context.putImageData(image, 0, 0);
  canvas.style.opacity = String($('opacity').value / 100);
}

function drawLegend(prediction) {
  const body = $('legend').tBodies[0];
  body.replaceChildren(
    ...prediction.found.map((c) =>
      el(
        'tr',
        { dataset: { id: String(c.id) } },
        el('td', {}, el('span', { className: 'swatch', style: { background: rgb(prediction.palette[c.id]) } })),
        el('td', { className: 'name' }, c.name),
        el('td', { className: 'number share' }, percent(c.share)),
      ),
    ),
  );
}

function drawTiming(prediction, roundTrip) {
  const t = prediction.timing;
  $('timing').textContent =
    `${prediction.width}x${prediction.height} labelled in ${Math.round(t.predictMs)} ms in ${prediction.precision} ` +
    `(decode ${Math.round(t.decodeMs)} ms, waiting ${Math.round(t.queueMs)} ms` +
    `${t.loadMs >= 1 ? `, loading the model ${Math.round(t.loadMs)} ms` : ''}; ${Math.round(roundTrip)} ms in all)`;
}

/** The server's time for the last image it labelled ({ name, width, height, predictMs }), to compare with the browser's. */
let serverTime = null;

function drawBrowserTiming(file, prediction, t) {
  const server =
    serverTime &&
    serverTime.name === file.name &&
    serverTime.width === prediction.width &&
    serverTime.height === prediction.height
      ? `; the server labelled it in ${Math.round(serverTime.predictMs)} ms`
      : '';
  const threads = inBrowser.threads;
  $('timing').textContent =
    `${prediction.width}x${prediction.height} ran in this browser (WebAssembly, ${threads} thread${threads === 1 ? '' : 's'}) ` +
    `in ${Math.round(t.predictMs)} ms (decode ${Math.round(t.decodeMs)} ms` +
    `${t.loadMs >= 1 ? `, loading the model ${Math.round(t.loadMs)} ms` : ''}; ${Math.round(t.totalMs)} ms in all)${server}`;
}

function setStatus(text, isError = false) {
  const status = $('status');
  status.textContent = text;
  status.classList.toggle('error', isError);
}

/** Shows a prediction (the server's or the browser's) over the photo: overlay, legend, status. */
async function showResult(file, prediction, ids, where) {
  const photo = $('photo');
  if (photo.src) URL.revokeObjectURL(photo.src);
  photo.src = URL.createObjectURL(file);
  await photo.decode().catch(() => undefined);
  shown = { ...prediction, ids };
  drawOverlay(prediction, ids);
  drawLegend(prediction);
  $('result').hidden = false;
  $('result').dataset.image = file.name;
  $('result').dataset.ran = where;
  const untrained = prediction.trained ? '' : ' (untrained: the labels are noise)';
  setStatus(`${file.name}: ${prediction.model}${untrained}${where === 'browser' ? ', run in this browser' : ''}`);
}

async function uploadToServer(file) {
  setStatus(`Labelling ${file.name}…`);
  const started = performance.now();
  let prediction;
  try {
    const response = await fetch('api/predict', {
      method: 'POST',
      headers: { 'content-type': file.type || 'application/octet-stream' },
      body: file,
    });
    if (!response.ok) throw new Error(await errorOf(response));
    prediction = await response.json();
  } catch (err) {
    setStatus(`${file.name}: ${err.message}`, true);
    return;
  }
  await showResult(file, prediction, decodeLabels(prediction), 'server');
  drawTiming(prediction, performance.now() - started);
  serverTime = {
    name: file.name,
    width: prediction.width,
    height: prediction.height,
    predictMs: prediction.timing.predictMs,
  };
}

/** Says what the "run in this browser" switch does or why it cannot (next to it). */
function sayInBrowser(text, isError = false) {
  const note = $('in-browser-note');
  note.textContent = text;
  note.classList.toggle('error', isError);
  delete note.dataset.ready;
}

/** Says that the model is loaded in the page (again, when the server's model changed). */
function sayReady(facts, loadMs) {
  const threads = inBrowser.threads;
  sayInBrowser(
    `ready: ${facts.model}, ${(facts.bytes / 2 ** 20).toFixed(1)} MB of ONNX, WebAssembly with ` +
      `${threads} thread${threads === 1 ? '' : 's'}${loadMs >= 1 ? ` (loaded in ${Math.round(loadMs)} ms)` : ''}`,
  );
  $('in-browser-note').dataset.ready = 'true';
}

async function labelInBrowser(file) {
  let result;
  try {
    result = await inBrowser.label(file, info.limits.maxPixels, (text) => setStatus(`${file.name}: ${text}`));
  } catch (err) {
    setStatus(`${file.name}: ${err.message}`, true);
    return;
  }
  if (result.timing.loadMs >= 1) sayReady(inBrowser.loaded.facts, result.timing.loadMs);
  await showResult(file, result.prediction, result.ids, 'browser');
  drawBrowserTiming(file, result.prediction, result.timing);
}

function upload(file) {
  if (!file) return;
  return $('in-browser').checked ? labelInBrowser(file) : uploadToServer(file);
}

/** The "run in this browser" switch: disabled with what to do when onnxruntime-web is missing; loads the model when turned on. */
function setUpInBrowser() {
  const box = $('in-browser');
  const idle = 'labels images here, without sending them';
  if (!info.browser.available) {
    box.disabled = true;
    sayInBrowser(info.browser.note);
    return;
  }
  sayInBrowser(idle);
  box.addEventListener('change', async () => {
    if (!box.checked) {
      sayInBrowser(idle);
      return;
    }
    try {
      const { facts, loadMs } = await inBrowser.prepare(sayInBrowser);
      sayReady(facts, loadMs);
    } catch (err) {
      box.checked = false;
      sayInBrowser(`cannot run the model in this browser: ${err.message}`, true);
    }
  });
}

function pointAt(event) {
  if (!shown) return;
  const canvas = $('overlay');
  const box = canvas.getBoundingClientRect();
  const x = Math.floor(((event.clientX - box.left) * shown.width) / box.width);
  const y = Math.floor(((event.clientY - box.top) * shown.height) / box.height);
  if (x < 0 || y < 0 || x >= shown.width || y >= shown.height) return;
  const id = shown.ids[y * shown.width + x];
  $('pointer-class').textContent = `${shown.classes[id] ?? `class ${id}`} at (${x}, ${y})`;
  for (const row of $('legend').tBodies[0].rows) row.classList.toggle('hovered', row.dataset.id === String(id));
}

function setUpPrediction() {
  $('file').addEventListener('change', (event) => upload(event.target.files[0]));
  const drop = $('drop');
  for (const name of ['dragenter', 'dragover']) {
    document.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add('over');
    });
  }
  document.addEventListener('dragleave', () => drop.classList.remove('over'));
  document.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    upload(event.dataTransfer.files[0]);
  });
  $('opacity').addEventListener('input', (event) => {
    $('overlay').style.opacity = String(event.target.value / 100);
  });
  $('overlay').addEventListener('pointermove', pointAt);
  $('overlay').addEventListener('pointerleave', () => {
    $('pointer-class').textContent = 'Point at the image to see its class.';
  });
}

// ---------- run view ----------

function drawIouTable(result) {
  // Classes in neither the labels nor the predictions have no IoU: they are left out.
  const present = result.classes.map((_, id) => id).filter((id) => result.classIoU[id] !== null);
  const rows = present.map((id) => {
    const name = result.classes[id];
    const iou = result.classIoU[id];
    return el(
      'tr',
      {},
      el('td', {}, el('span', { className: 'swatch', style: { background: rgb(result.palette[id]) } })),
      el('td', {}, name),
      el('td', { className: 'number' }, iou.toFixed(3)),
      el('td', {}, el('span', { className: 'bar', style: { width: `${Math.round(iou * 120)}px` } })),
    );
  });
  $('iou-table').tBodies[0].replaceChildren(...rows);
}

function drawConfusion(result) {
  const { confusion, classes } = result;
  const present = classes
    .map((_, id) => id)
    .filter((id) => confusion[id].some((v) => v > 0) || confusion.some((row) => row[id] > 0));
  const head = el('tr', {}, el('th', {}, ''), ...present.map((id) => el('th', { className: 'column' }, classes[id])));
  const rows = present.map((truth) => {
    const total = confusion[truth].reduce((s, v) => s + v, 0);
    const cells = present.map((guess) => {
      const count = confusion[truth][guess];
      const share = total > 0 ? count / total : 0;
      return el(
        'td',
        {
          title: `label ${classes[truth]}, predicted ${classes[guess]}: ${count} pixels (${percent(share)} of the label's)`,
          style: {
            background: `rgba(37, 99, 235, ${share.toFixed(3)})`,
            color: share > 0.5 ? '#fff' : '#1d232b',
          },
          dataset: { share: share.toFixed(4) },
        },
        share >= 0.01 ? String(Math.round(share * 100)) : '',
      );
    });
    return el('tr', {}, el('th', {}, classes[truth]), ...cells);
  });
  $('confusion').replaceChildren(el('thead', {}, head), el('tbody', {}, ...rows));
}

function drawGrid(result, stamp) {
  const figures = result.grid.flatMap((entry, index) =>
    ['image', 'prediction', 'label', 'error'].map((kind) =>
      el(
        'figure',
        {},
        el('img', { src: `api/run/grid/${index}/${kind}.png?v=${stamp}`, alt: `${entry.name}: ${kind}` }),
        el(
          'figcaption',
          {},
          kind === 'image' ? entry.name : kind === 'error' ? `errors: ${percent(entry.errorRate)}` : kind,
        ),
      ),
    ),
  );
  $('val-grid').replaceChildren(...figures);
}

const runView = {
  timer: null,
  curvesVersion: null,
  status: null,
  evaluationShown: null,
  asked: false,

  open() {
    if (this.timer !== null) return;
    this.poll();
    this.timer = setInterval(() => this.poll(), (info.pollSeconds || 2) * 1000);
  },

  close() {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  },

  async poll() {
    try {
      const status = await getJson('api/run');
      this.status = status;
      this.drawStatus(status);
      if (!this.asked && status.version !== null) {
        this.asked = true;
        await this.evaluate();
      }
      await this.pollEvaluation();
    } catch (err) {
      $('run-summary').textContent = `cannot read the run: ${err.message}`;
    }
  },

  drawStatus(status) {
    $('run-dir').textContent = status.dir;
    const c = status.config;
    const last = status.history[status.history.length - 1];
    const parts = [];
    if (status.problem) parts.push(status.problem);
    else if (status.version === null) parts.push('no checkpoint yet: waiting for the first epoch to end');
    else {
      parts.push(`epoch ${status.epoch}`);
      if (c) parts.push(`${c.arch}, crop ${(c.crop || []).join('x')}, batch ${c.batchSize}, lr ${c.lr}`);
      if (last) {
        parts.push(
          `loss ${last.trainLoss.toFixed(3)}, test acc ${last.testAccuracy.toFixed(3)}, test mIoU ${last.testMeanIoU.toFixed(3)}`,
        );
      }
      parts.push(`checkpoint written ${new Date(status.version).toLocaleTimeString()}`);
    }
    $('run-summary').textContent = parts.join(' · ');
    $('run-files').replaceChildren(
      ...status.files.map((f) =>
        el(
          'li',
          {},
          el('a', { href: `run/files/${encodeURIComponent(f.name)}`, target: '_blank' }, f.name),
          ` (${f.bytes < 2 ** 20 ? `${(f.bytes / 1024).toFixed(1)} kB` : `${(f.bytes / 2 ** 20).toFixed(1)} MB`})`,
        ),
      ),
    );
    if (status.history.length > 0 && this.curvesVersion !== status.version) {
      this.curvesVersion = status.version;
      const curves = $('curves');
      curves.onload = () => {
        curves.dataset.epochs = String(status.history.length);
        $('curves-caption').textContent =
          `loss, train acc, test acc and test mIoU after ${status.history.length} epoch(s)`;
      };
      curves.src = `api/run/curves.svg?v=${status.version}`;
    }
  },

  async evaluate() {
    const state = await getJson('api/run/evaluation', { method: 'POST' });
    this.drawEvaluation(state);
  },

  async pollEvaluation() {
    this.drawEvaluation(await getJson('api/run/evaluation'));
  },

  drawEvaluation(state) {
    const status = $('eval-status');
    status.classList.toggle('error', state.state === 'failed');
    const epoch = this.status ? this.status.epoch : 0;
    const newer =
      state.state !== 'none' && !state.current && epoch > 0 ? ` (the checkpoint is now at epoch ${epoch})` : '';
    if (state.state === 'none') status.textContent = 'not evaluated yet';
    else if (state.state === 'running') {
      status.textContent = `evaluating epoch ${state.epoch}: ${state.done}/${state.total || '?'} images…`;
    } else if (state.state === 'failed')
      status.textContent = `the evaluation of epoch ${state.epoch} failed: ${state.error}`;
    else status.textContent = `evaluation of epoch ${state.epoch}${newer}`;
    $('evaluate').disabled = state.state === 'running' || (state.current && state.state === 'done');
    if (state.state !== 'done') return;
    const stamp = `${state.epoch}-${state.seconds}`;
    if (this.evaluationShown === stamp) return;
    this.evaluationShown = stamp;
    $('eval-summary').textContent =
      `${state.examples} val images, whole: pixel accuracy ${state.pixelAccuracy.toFixed(4)}, ` +
      `mean IoU ${state.meanIoU.toFixed(4)} (${state.seconds.toFixed(1)} s)`;
    drawIouTable(state);
    drawConfusion(state);
    drawGrid(state, stamp);
    $('evaluation').hidden = false;
    $('evaluation').dataset.epoch = String(state.epoch);
  },
};

// ---------- start ----------

async function start() {
  setUpPrediction();
  $('tab-predict').addEventListener('click', () => {
    history.replaceState(null, '', '#predict');
    show('predict');
  });
  $('tab-run').addEventListener('click', () => {
    history.replaceState(null, '', '#run');
    show('run');
  });
  $('evaluate').addEventListener('click', () =>
    runView.evaluate().catch((err) => {
      $('eval-status').textContent = err.message;
    }),
  );
  try {
    info = await getJson('api/info');
  } catch (err) {
    setStatus(`cannot reach the viewer's server: ${err.message}`, true);
    return;
  }
  const name = $('model-name');
  name.textContent = `model: ${info.model.name}`;
  if (!info.model.trained) name.append(el('span', { className: 'badge' }, 'untrained'));
  $('tab-run').hidden = !info.run;
  setUpInBrowser();
  show(location.hash === '#run' ? 'run' : 'predict');
  document.body.dataset.ready = 'true';
}

start();
