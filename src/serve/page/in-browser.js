// "Run in this browser" on the viewer's predict page (fcn serve): the served model, exported
// as ONNX by the server (api/browser-model says its version and how the server prepares
// images), runs in ONNX Runtime's WebAssembly build (onnxruntime-web, which the viewer serves
// under ort/ from its own node_modules: no CDN) on an image decoded here, never uploaded.
// The image is prepared as the server prepares it, so that the labels are the server's: the
// chapter's FCNs run on tiles of at most tileSize (sides multiples of 32, spread over the
// image as the server spreads them, sides under 32 padded) whose logits are averaged where
// they overlap; torchvision's models on the image with its shorter side resized (bilinear,
// antialiased, rounded to uint8, as torchvision), their logits resized back (bilinear).
// Where the server's float32 rounding decides a value, it is kept here (Math.fround).
// Plain browser JavaScript: viewer.js calls inBrowser.prepare() and inBrowser.label(file).

const f32 = Math.fround;

/** The mean colour of ImageNet as uint8, what the server's zero padding of normalised pixels is. */
const MEAN_PIXEL = [124, 116, 104];

async function fetchOk(url) {
  const response = await fetch(url);
  if (response.ok) return response;
  let message = `the server answered ${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && typeof body.error === 'string') message = body.error;
  } catch {
    // not JSON: the status says it
  }
  throw new Error(message);
}

/** Loads ort/ort.wasm.min.js (onnxruntime-web's WebAssembly build); resolves to its `ort` global, set up. */
function loadRuntime() {
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = 'ort/ort.wasm.min.js';
    script.onload = () => (window.ort ? resolve(window.ort) : reject(new Error('ort/ort.wasm.min.js defined no ort')));
    script.onerror = () => reject(new Error('cannot load ONNX Runtime from the viewer (ort/ort.wasm.min.js)'));
    document.head.append(script);
  }).then((ort) => {
    ort.env.wasm.wasmPaths = new URL('ort/', document.baseURI).href;
    // Threads need SharedArrayBuffer, hence cross-origin isolation (the viewer sends COOP and
    // COEP; a page reached over plain HTTP on another host is not isolated): else one thread.
    ort.env.wasm.numThreads = self.crossOriginIsolated
      ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1))
      : 1;
    return ort;
  });
}

/** Decodes an image file to planar RGB uint8 [3, H, W], EXIF orientation applied (as the server decodes). */
async function decodeImage(file, maxPixels) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, {
      imageOrientation: 'from-image',
      premultiplyAlpha: 'none',
      colorSpaceConversion: 'default',
    });
  } catch {
    throw new Error('not an image this browser can read: expected JPEG, PNG or WebP');
  }
  const { width, height } = bitmap;
  if (width * height > maxPixels) {
    bitmap.close();
    throw new Error(`the image is ${width}x${height} = ${width * height} pixels, over the limit of ${maxPixels}`);
  }
  const context = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = context.getImageData(0, 0, width, height).data;
  const plane = width * height;
  const rgb = new Uint8Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    rgb[i] = rgba[i * 4];
    rgb[plane + i] = rgba[i * 4 + 1];
    rgb[2 * plane + i] = rgba[i * 4 + 2];
  }
  return { width, height, rgb };
}

/** Tile starts along a side, as the server spreads them: the first at 0, the last at side - tile. */
function tileStarts(side, tile) {
  const count = Math.ceil(side / tile);
  if (count <= 1) return [0];
  const starts = [];
  for (let i = 0; i < count; i++)
    starts.push(Math.floor((i * (side - tile) + Math.floor((count - 1) / 2)) / (count - 1)));
  return starts;
}

/** The [h, w] window at (top, left) of planar pixels [3, rows, cols]. */
function cropPlanes(pixels, rows, cols, top, left, h, w) {
  const out = new Uint8Array(3 * h * w);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) {
      const from = c * rows * cols + (top + y) * cols + left;
      out.set(pixels.subarray(from, from + w), c * h * w + y * w);
    }
  }
  return out;
}

/** Class ids of the first height x width pixels of scores [C, rows, cols]: the first of equal maxima, NaN above all. */
function argmaxOf(scores, classes, rows, cols, height, width, ids) {
  const plane = rows * cols;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * cols + x;
      let best = 0;
      let top = scores[p];
      if (!Number.isNaN(top)) {
        for (let c = 1; c < classes; c++) {
          const v = scores[c * plane + p];
          if (Number.isNaN(v)) {
            best = c;
            break;
          }
          if (v > top) {
            top = v;
            best = c;
          }
        }
      }
      ids[y * width + x] = best;
    }
  }
  return ids;
}

/** Runs session on uint8 pixels [1, 3, h, w]; its float32 logits [1, C, h, w] as { data, classes }. */
async function logitsOf(ort, session, pixels, h, w) {
  const input = new ort.Tensor('uint8', pixels, [1, 3, h, w]);
  const outputs = await session.run({ [session.inputNames[0]]: input });
  const logits = outputs[session.outputNames[0]];
  const dims = logits.dims;
  if (dims.length !== 4 || dims[0] !== 1 || dims[2] !== h || dims[3] !== w || logits.type !== 'float32') {
    throw new Error(
      `the model turned ${h}x${w} pixels into ${logits.type} [${dims.join(', ')}]; expected logits [1, C, ${h}, ${w}]`,
    );
  }
  return { data: logits.data, classes: dims[1] };
}

/** Labels of the chapter's FCN: tiles of at most tileSize over the image, logits averaged where they overlap. */
async function labelTiles(ort, session, image, tileSize, ids) {
  const { width, height } = image;
  const rows = Math.max(height, 32);
  const cols = Math.max(width, 32);
  let pixels = image.rgb;
  if (rows !== height || cols !== width) {
    pixels = new Uint8Array(3 * rows * cols);
    for (let c = 0; c < 3; c++) {
      pixels.fill(MEAN_PIXEL[c], c * rows * cols, (c + 1) * rows * cols);
      for (let y = 0; y < height; y++) {
        pixels.set(
          image.rgb.subarray((c * height + y) * width, (c * height + y + 1) * width),
          c * rows * cols + y * cols,
        );
      }
    }
  }
  const th = Math.min(tileSize[0], Math.floor(rows / 32) * 32);
  const tw = Math.min(tileSize[1], Math.floor(cols / 32) * 32);
  const tops = tileStarts(rows, th);
  const lefts = tileStarts(cols, tw);
  if (tops.length === 1 && lefts.length === 1) {
    const { data, classes } = await logitsOf(ort, session, cropPlanes(pixels, rows, cols, 0, 0, th, tw), th, tw);
    return argmaxOf(data, classes, th, tw, height, width, ids);
  }
  let sum = null;
  let classes = 0;
  const count = new Float32Array(rows * cols);
  for (const top of tops) {
    for (const left of lefts) {
      const tile = await logitsOf(ort, session, cropPlanes(pixels, rows, cols, top, left, th, tw), th, tw);
      classes = tile.classes;
      sum ??= new Float32Array(classes * rows * cols);
      for (let c = 0; c < classes; c++) {
        for (let y = 0; y < th; y++) {
          const to = c * rows * cols + (top + y) * cols + left;
          const from = (c * th + y) * tw;
          for (let x = 0; x < tw; x++) sum[to + x] += tile.data[from + x];
        }
      }
      for (let y = 0; y < th; y++) {
        for (let x = 0; x < tw; x++) count[(top + y) * cols + left + x] += 1;
      }
    }
  }
  // The mean in float32, as the server's (sum / count): the argmax follows its rounding.
  const plane = rows * cols;
  for (let i = 0; i < sum.length; i++) sum[i] /= count[i % plane];
  return argmaxOf(sum, classes, rows, cols, height, width, ids);
}

/** torchvision's size for the shorter side resized to size (the longer in proportion, truncated). */
function shorterSideSize(height, width, size) {
  const longer = Math.trunc((size * Math.max(height, width)) / Math.min(height, width));
  return height <= width ? [size, longer] : [longer, size];
}

/** PyTorch's antialiased bilinear weights (_compute_weights_aa, float32) of resizing a side of inSize to outSize. */
function aaWeights(inSize, outSize) {
  const scale = f32(inSize / outSize);
  const support = Math.max(scale, 1);
  const invscale = scale >= 1 ? f32(1 / scale) : 1;
  const span = Math.ceil(support) * 2 + 1;
  const starts = new Int32Array(outSize);
  const sizes = new Int32Array(outSize);
  const weights = new Float32Array(outSize * span);
  for (let i = 0; i < outSize; i++) {
    const center = f32(scale * (i + 0.5));
    const first = Math.max(Math.trunc(f32(center - support) + 0.5), 0);
    const size = Math.min(Math.max(Math.min(Math.trunc(f32(center + support) + 0.5), inSize) - first, 0), span);
    let total = 0;
    for (let j = 0; j < size; j++) {
      const x = Math.abs(f32((f32(j + first - center) + 0.5) * invscale));
      const w = x < 1 ? f32(1 - x) : 0;
      weights[i * span + j] = w;
      total = f32(total + w);
    }
    if (total !== 0) for (let j = 0; j < size; j++) weights[i * span + j] /= total;
    starts[i] = first;
    sizes[i] = size;
  }
  return { starts, sizes, weights, span };
}

/**
 * One pass of the antialiased resize along a side: `lines` lines of inSize values, each `step`
 * apart, line l starting at l * lineIn in src and l * lineOut in dst, to outSize values.
 */
function resizeSide(src, dst, lines, lineIn, lineOut, step, aa) {
  for (let line = 0; line < lines; line++) {
    const base = line * lineIn;
    const out = line * lineOut;
    for (let i = 0; i < aa.starts.length; i++) {
      const first = aa.starts[i];
      const w = i * aa.span;
      let acc = f32(src[base + first * step] * aa.weights[w]);
      for (let j = 1; j < aa.sizes[i]; j++) acc = f32(acc + f32(src[base + (first + j) * step] * aa.weights[w + j]));
      dst[out + i * step] = acc;
    }
  }
}

/** Rounds half to even, as torch.round. */
function roundHalfEven(v) {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Planar uint8 pixels [3, h, w] resized to [3, outH, outW] as torchvision resizes them: width, then height, then rounded. */
function resizePixels(rgb, h, w, outH, outW) {
  let planes = Float32Array.from(rgb);
  if (outW !== w) {
    // Rows: 3 x h lines of w values, side by side.
    const wide = new Float32Array(3 * h * outW);
    resizeSide(planes, wide, 3 * h, w, outW, 1, aaWeights(w, outW));
    planes = wide;
  }
  if (outH !== h) {
    // Columns: in each plane, outW lines of h values outW apart.
    const tall = new Float32Array(3 * outH * outW);
    const aa = aaWeights(h, outH);
    for (let c = 0; c < 3; c++) {
      const from = planes.subarray(c * h * outW, (c + 1) * h * outW);
      resizeSide(from, tall.subarray(c * outH * outW, (c + 1) * outH * outW), outW, 1, 1, outW, aa);
    }
    planes = tall;
  }
  const out = new Uint8Array(planes.length);
  for (let i = 0; i < planes.length; i++) out[i] = Math.min(255, Math.max(0, roundHalfEven(planes[i])));
  return out;
}

/** PyTorch's bilinear indices and weights (align_corners false, float32) of resizing a side of inSize to outSize. */
function linearWeights(inSize, outSize) {
  const scale = f32(inSize / outSize);
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const l0 = new Float32Array(outSize);
  const l1 = new Float32Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const real = Math.max(f32(f32(scale * (o + 0.5)) - 0.5), 0);
    const index = Math.min(Math.floor(real), inSize - 1);
    const lambda = Math.min(Math.max(f32(real - index), 0), 1);
    i0[o] = index;
    i1[o] = index + (index < inSize - 1 ? 1 : 0);
    l1[o] = lambda;
    l0[o] = f32(1 - lambda);
  }
  return { i0, i1, l0, l1 };
}

/** Class ids [height, width] of logits [C, h, w] resized bilinearly to height x width (not kept: each pixel's argmax at once). */
function argmaxResized(scores, classes, h, w, height, width, ids) {
  const ys = linearWeights(h, height);
  const xs = linearWeights(w, width);
  const plane = h * w;
  for (let y = 0; y < height; y++) {
    const r0 = ys.i0[y] * w;
    const r1 = ys.i1[y] * w;
    const [a, b] = [ys.l0[y], ys.l1[y]];
    for (let x = 0; x < width; x++) {
      const [c0, c1, p, q] = [xs.i0[x], xs.i1[x], xs.l0[x], xs.l1[x]];
      let best = 0;
      let top = Number.NaN;
      for (let c = 0; c < classes; c++) {
        const s = c * plane;
        const upper = f32(f32(scores[s + r0 + c0] * p) + f32(scores[s + r0 + c1] * q));
        const lower = f32(f32(scores[s + r1 + c0] * p) + f32(scores[s + r1 + c1] * q));
        const v = f32(f32(upper * a) + f32(lower * b));
        if (Number.isNaN(v)) {
          best = c;
          break;
        }
        if (c === 0 || v > top) {
          top = v;
          best = c;
        }
      }
      ids[y * width + x] = best;
    }
  }
  return ids;
}

/** Labels of a torchvision model: the image resized (shorter side resizeSize), its logits resized back. */
async function labelResized(ort, session, image, resizeSize, ids) {
  const { width, height, rgb } = image;
  const [h, w] = shorterSideSize(height, width, resizeSize);
  const pixels = h === height && w === width ? rgb : resizePixels(rgb, height, width, h, w);
  const { data, classes } = await logitsOf(ort, session, pixels, h, w);
  return argmaxResized(data, classes, h, w, height, width, ids);
}

/** The classes present in ids, most pixels first, with their share (as the server's). */
function classesFound(ids, names) {
  const counts = new Map();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return [...counts.entries()]
    .map(([id, pixels]) => ({ id, name: names[id] ?? `class ${id}`, pixels, share: pixels / ids.length }))
    .sort((a, b) => b.pixels - a.pixels || a.id - b.id);
}

// biome-ignore lint/correctness/noUnusedVariables: viewer.js, the page's other script, uses it
const inBrowser = {
  /** The ort global once loaded (a promise). */
  runtime: null,
  /** The model loaded: { version, facts, session }. */
  loaded: null,
  /** The last job (a model load or a labelling), which the next waits for: one at a time. */
  pending: Promise.resolve(),

  /** Threads ONNX Runtime runs on (known once it is loaded). */
  get threads() {
    return window.ort ? window.ort.env.wasm.numThreads : 0;
  },

  /**
   * Loads ONNX Runtime (once) and the served model (again whenever the server's version
   * changed); resolves to { facts, session, loadMs }. say(text) tells what it waits for.
   */
  prepare(say = () => {}) {
    return this.serial(() => this.load(say));
  },

  /** Runs job once the jobs before it are done (a session runs one image at a time, and is replaced between them). */
  serial(job) {
    const next = this.pending.catch(() => undefined).then(job);
    this.pending = next;
    return next;
  },

  async load(say) {
    const started = performance.now();
    if (!this.runtime) {
      say('loading ONNX Runtime (WebAssembly)…');
      this.runtime = loadRuntime().catch((err) => {
        this.runtime = null;
        throw err;
      });
    }
    const ort = await this.runtime;
    say('asking the server for its model as ONNX…');
    const facts = await (await fetchOk('api/browser-model')).json();
    if (this.loaded && this.loaded.version === facts.version) return { ...this.loaded, loadMs: 0 };
    say(`loading the model (${(facts.bytes / 2 ** 20).toFixed(1)} MB)…`);
    const bytes = new Uint8Array(await (await fetchOk(facts.url)).arrayBuffer());
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
    if (this.loaded) await this.loaded.session.release().catch(() => undefined);
    this.loaded = { version: facts.version, facts, session };
    return { ...this.loaded, loadMs: performance.now() - started };
  },

  /**
   * Labels an image file here: resolves to { prediction (width, height, classes, palette,
   * found, model, trained, as the server's), ids, timing (loadMs, decodeMs, predictMs, totalMs) }.
   */
  label(file, maxPixels, say = () => {}) {
    return this.serial(() => this.labelNow(file, maxPixels, say));
  },

  async labelNow(file, maxPixels, say) {
    const started = performance.now();
    const { facts, session, loadMs } = await this.load(say);
    const ort = await this.runtime;
    say('labelling in this browser…');
    const decodeStart = performance.now();
    const image = await decodeImage(file, maxPixels);
    const decoded = performance.now();
    const plane = image.width * image.height;
    const ids = facts.classes.length > 256 ? new Int32Array(plane) : new Uint8Array(plane);
    if (facts.input.kind === 'tiles') await labelTiles(ort, session, image, facts.input.tileSize, ids);
    else await labelResized(ort, session, image, facts.input.resizeSize, ids);
    const done = performance.now();
    return {
      prediction: {
        width: image.width,
        height: image.height,
        classes: facts.classes,
        palette: facts.palette,
        found: classesFound(ids, facts.classes),
        model: facts.model,
        trained: facts.trained,
      },
      ids,
      timing: { loadMs, decodeMs: decoded - decodeStart, predictMs: done - decoded, totalMs: done - started },
    };
  },
};
