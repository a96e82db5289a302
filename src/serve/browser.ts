/**
 * "Run in this browser", the predict page's switch: the served model runs in the page, in ONNX
 * Runtime's WebAssembly build (`onnxruntime-web`, an optional peer dependency: the viewer
 * serves its few files from where Node finds the package, never from a CDN), on an image that
 * is decoded there and never uploaded. The server exports the model as ONNX (`exportOnnx`,
 * uint8 pixels in, the normalisation inside the graph) once per network its source gives,
 * into a folder of its own that goes when it closes: a run whose checkpoint is rewritten gives
 * another network, hence another export, and the page, which asks for the model's version
 * before each image, loads that one. The page prepares the image as the server does, so that
 * its labels are the server's (see {@link BrowserModel.input}).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { classColour } from '../data/classes';
import { SegmentationModel } from '../models/segmentation';
import type { Module } from '../nn/module';
import { exportOnnx } from '../onnx/export';
import { IMAGENET_MEAN, IMAGENET_STD } from '../voc/loader';
import type { LoadedModel, ModelSource } from './models';
import type { JobQueue } from './queue';
import { HttpError } from './upload';

/** The files of onnxruntime-web's WebAssembly build that the page loads, with their content types. */
export const ORT_FILES: Readonly<Record<string, string>> = {
  'ort.wasm.min.js': 'text/javascript; charset=utf-8',
  'ort-wasm-simd-threaded.mjs': 'text/javascript; charset=utf-8',
  'ort-wasm-simd-threaded.wasm': 'application/wasm',
};

/** What the page says by its disabled switch when onnxruntime-web is not installed. */
export const ORT_MISSING = 'npm install onnxruntime-web to run models in the browser';

/** Where onnxruntime-web's files are, or why the browser cannot run models. */
export type OrtWeb = { dir: string; version: string } | { missing: string };

/**
 * onnxruntime-web's `dist` folder as Node resolves the package from here (the user's
 * node_modules when fcn-torch is installed in a project), with its version; `missing` says
 * what to do when it is not installed or lacks the WebAssembly files this viewer loads.
 */
export function findOrtWeb(): OrtWeb {
  let dir: string;
  try {
    dir = path.dirname(require.resolve('onnxruntime-web/wasm'));
  } catch {
    return { missing: ORT_MISSING };
  }
  let version = 'unknown';
  try {
    version = String(JSON.parse(fs.readFileSync(path.join(dir, '..', 'package.json'), 'utf8')).version);
  } catch {
    // a package.json that cannot be read leaves the version unknown; the files decide
  }
  const absent = Object.keys(ORT_FILES).filter((name) => !fs.existsSync(path.join(dir, name)));
  if (absent.length > 0) {
    return {
      missing: `onnxruntime-web ${version} lacks ${absent.join(', ')}: npm install onnxruntime-web@^1.31.1 to run models in the browser`,
    };
  }
  return { dir, version };
}

/** What GET /api/browser-model answers: the model the page runs, and how it prepares images. */
export interface BrowserModel {
  /** Changes with the served model (a run's checkpoint rewritten): the page then loads the new file. */
  version: string;
  /** Where the page gets the ONNX file: uint8 pixels `image` [1, 3, H, W] in, float32 `logits` out. */
  url: string;
  /** Its size in bytes. */
  bytes: number;
  /** Class names, index = class id. */
  classes: readonly string[];
  /** RGB colour of each class, index = class id. */
  palette: [number, number, number][];
  /** What the model is (architecture, epoch, file). */
  model: string;
  trained: boolean;
  /**
   * How the server prepares an image, which the page does the same way: `tiles` (the
   * chapter's FCNs): tiles of at most tileSize, multiples of 32, spread over the image (sides
   * under 32 padded), their logits averaged where they overlap; `resized` (torchvision's
   * models): the shorter side resized to resizeSize (bilinear, antialiased, rounded to uint8),
   * the logits resized back to the image's size (bilinear).
   */
  input: { kind: 'tiles'; tileSize: [number, number] } | { kind: 'resized'; resizeSize: number };
}

/** The two files the route gives: with the argmax in the graph (`labels`), or the logits the page averages. */
export type OnnxOutput = 'labels' | 'logits';

/** One export of one network. */
interface Exported {
  file: string;
  bytes: number;
  version: string;
}

const sameNumbers = (a: readonly number[], b: readonly number[]) => a.every((v, i) => Math.abs(v - b[i]) < 1e-9);

/** How the server prepares images for model, or an HttpError 422 when the exported graph cannot do the same. */
function inputOf(model: LoadedModel): BrowserModel['input'] {
  if (model.net instanceof SegmentationModel) {
    const { resizeSize, mean, std } = model.net.transforms;
    if (!sameNumbers(mean, IMAGENET_MEAN) || !sameNumbers(std, IMAGENET_STD)) {
      throw new HttpError(
        422,
        "this model's weights normalise images with other statistics than ImageNet's, which the ONNX export does not carry: it runs on the server only",
      );
    }
    return { kind: 'resized', resizeSize };
  }
  if (model.preprocess) {
    throw new HttpError(
      422,
      'this model prepares images with its own function, which an ONNX export cannot carry: it runs on the server only',
    );
  }
  return { kind: 'tiles', tileSize: model.tileSize ?? [320, 480] };
}

/**
 * The served model as ONNX files, exported on first use, one at a time through the
 * prediction queue, and again whenever the source gives another network. Files live in a
 * temporary folder of this server's, removed by {@link OnnxExports.close}.
 */
export class OnnxExports {
  readonly #source: ModelSource;
  readonly #queue: JobQueue;
  /** The network exported, and its files by output. */
  #net: Module | undefined;
  readonly #entries = new Map<OnnxOutput, Promise<Exported>>();
  readonly #id = randomUUID().slice(0, 8);
  #dir: Promise<string> | undefined;
  #count = 0;

  constructor(source: ModelSource, queue: JobQueue) {
    this.#source = source;
    this.#queue = queue;
  }

  /** The model now served and its export with output; HttpErrors the page shows. */
  async get(output: OnnxOutput): Promise<{ model: LoadedModel; input: BrowserModel['input']; exported: Exported }> {
    const model = await this.#source.load().catch((err: unknown) => {
      throw new HttpError(503, `the model cannot be loaded: ${(err as Error).message}`);
    });
    const input = inputOf(model);
    if (this.#net !== model.net) {
      // Another network: the files of the one before go (a download under way keeps its open file).
      for (const stale of this.#entries.values()) {
        stale.then((old) => fs.promises.rm(old.file, { force: true })).catch(() => undefined);
      }
      this.#entries.clear();
      this.#net = model.net;
    }
    let done = this.#entries.get(output);
    if (!done) {
      const started = this.#export(model, output);
      done = started;
      this.#entries.set(output, started);
      // A failed export is tried again on the next request.
      started.catch(() => {
        if (this.#entries.get(output) === started) this.#entries.delete(output);
      });
    }
    return { model, input, exported: await done };
  }

  async #export(model: LoadedModel, output: OnnxOutput): Promise<Exported> {
    this.#dir ??= fs.promises.mkdtemp(path.join(os.tmpdir(), 'fcn-serve-onnx-'));
    const dir = await this.#dir;
    this.#count += 1;
    const version = `${this.#id}-${this.#count}`;
    const file = path.join(dir, `model-${this.#count}-${output}.onnx`);
    const written = await this.#queue.run(() =>
      exportOnnx(model.net, file, {
        preprocess: true,
        labels: output === 'labels',
        classes: [...model.classes],
        palette: model.palette ?? model.classes.map((_, id) => classColour(id)),
        metadata: { model: model.label },
      }).catch((err: unknown) => {
        const message = (err as Error).message;
        if (message.startsWith('cannot write')) throw new HttpError(500, `the ONNX export failed: ${message}`);
        throw new HttpError(422, `this model cannot be exported to ONNX, so it runs on the server only: ${message}`);
      }),
    );
    return { file: written.file, bytes: written.bytes, version };
  }

  /** Removes the exported files. */
  async close(): Promise<void> {
    const dir = await this.#dir?.catch(() => undefined);
    if (dir) await fs.promises.rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** A file name for the download of source's model: its name without the weights' extension, and `.onnx`. */
function downloadName(source: ModelSource): string {
  const base = source.name.replace(/\.(safetensors|pth|pt|bin)$/i, '').replace(/[^\w.-]+/g, '-');
  return `${base || 'model'}.onnx`;
}

/**
 * Adds the routes of running in the browser: onnxruntime-web's files under /ort/, the model's
 * facts and version (GET /api/browser-model) and the model as ONNX (GET /api/model.onnx:
 * `labels` by default, the file to deploy; `?output=logits`, the one the page runs;
 * `&version=V`, only if the model is still that version, else 409).
 */
export function registerBrowser(
  app: FastifyInstance,
  ctx: { model: ModelSource; ort: OrtWeb; onnx: OnnxExports },
): void {
  const { ort, onnx } = ctx;
  app.addHook('onClose', () => onnx.close());
  app.get<{ Params: { file: string } }>('/ort/:file', (request, reply) => {
    if ('missing' in ort) throw new HttpError(404, ort.missing);
    const type = ORT_FILES[request.params.file];
    if (!type) throw new HttpError(404, `no such file of onnxruntime-web here: ${request.params.file}`);
    return reply.type(type).send(fs.createReadStream(path.join(ort.dir, request.params.file)));
  });
  app.get('/api/browser-model', async (): Promise<BrowserModel> => {
    if ('missing' in ort) throw new HttpError(501, ort.missing);
    const { model, input, exported } = await onnx.get('logits');
    return {
      version: exported.version,
      url: `api/model.onnx?output=logits&version=${exported.version}`,
      bytes: exported.bytes,
      classes: model.classes,
      palette: model.palette ?? model.classes.map((_, id) => classColour(id)),
      model: model.label,
      trained: ctx.model.trained,
      input,
    };
  });
  app.get<{ Querystring: { output?: string; version?: string } }>('/api/model.onnx', async (request, reply) => {
    const output = request.query.output ?? 'labels';
    if (output !== 'labels' && output !== 'logits') {
      throw new HttpError(400, `output: expected labels or logits, got '${output}'`);
    }
    const { exported } = await onnx.get(output);
    // The page asks for the version it was told of: not another network's file under its facts.
    if (request.query.version !== undefined && request.query.version !== exported.version) {
      throw new HttpError(409, 'the served model changed meanwhile: try again');
    }
    reply.header('etag', `"${exported.version}"`);
    reply.header('content-disposition', `attachment; filename="${downloadName(ctx.model)}"`);
    return reply.type('application/octet-stream').send(fs.createReadStream(exported.file));
  });
}
