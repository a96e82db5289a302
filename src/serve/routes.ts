/**
 * The viewer's routes: the page (static files the package ships in src/serve/page, read
 * once), the prediction API, the run view's API (progress, curves, evaluation, grid pictures,
 * and the run folder's files, read-only), and running the model in the browser (./browser).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { OnnxExports, type OrtWeb, registerBrowser } from './browser';
import type { ServeLimits } from './limits';
import type { ModelSource } from './models';
import { predictUpload } from './prediction';
import type { JobQueue } from './queue';
import type { RunFolder } from './run';
import { HttpError } from './upload';

/** The page's files: src/serve/page in the package (from dist/src/serve, three levels up). */
export const PAGE_DIR = path.resolve(__dirname, '..', '..', '..', 'src', 'serve', 'page');

const PAGE_FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'viewer.js': 'text/javascript; charset=utf-8',
  'in-browser.js': 'text/javascript; charset=utf-8',
  'viewer.css': 'text/css; charset=utf-8',
};

/** Content types of the run folder's files; others are sent as downloads. */
const RUN_FILE_TYPES: Record<string, string> = {
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.log': 'text/plain; charset=utf-8',
};

/** What the routes work with. */
export interface RouteContext {
  model: ModelSource;
  queue: JobQueue;
  run: RunFolder | undefined;
  limits: ServeLimits;
  pollSeconds: number;
  gridSize: number;
  /** onnxruntime-web's files for "run in this browser", or why there are none. */
  ort: OrtWeb;
}

function needRun(run: RunFolder | undefined): RunFolder {
  if (!run) throw new HttpError(404, 'no run folder is served: start fcn serve with --run DIR');
  return run;
}

function registerPage(app: FastifyInstance): void {
  const files = new Map(
    Object.entries(PAGE_FILES).map(([name, type]) => [
      name,
      { type, body: fs.readFileSync(path.join(PAGE_DIR, name)) },
    ]),
  );
  const send = (reply: FastifyReply, name: string) => {
    const file = files.get(name) as { type: string; body: Buffer };
    return reply.type(file.type).send(file.body);
  };
  app.get('/', (_request, reply) => send(reply, 'index.html'));
  for (const name of files.keys()) app.get(`/${name}`, (_request, reply) => send(reply, name));
}

function registerRun(app: FastifyInstance, ctx: RouteContext): void {
  app.get('/api/run', () => needRun(ctx.run).status());
  app.get('/api/run/curves.svg', async (_request, reply) => {
    const svg = await needRun(ctx.run).curves();
    return reply.type('image/svg+xml').send(svg);
  });
  app.get('/api/run/evaluation', () => needRun(ctx.run).evaluation(false));
  app.post('/api/run/evaluation', () => needRun(ctx.run).evaluation(true));
  app.get<{ Params: { index: string; kind: string } }>('/api/run/grid/:index/:kind', (request, reply) => {
    const { index, kind } = request.params;
    const picture = needRun(ctx.run).picture(Number(index), kind.replace(/\.png$/, ''));
    return reply.type('image/png').send(picture);
  });
  app.get<{ Params: { '*': string } }>('/run/files/*', async (request, reply) => {
    const file = await needRun(ctx.run).file(request.params['*']);
    const type = RUN_FILE_TYPES[path.extname(file).toLowerCase()];
    if (!type) reply.header('content-disposition', `attachment; filename="${path.basename(file).replace(/"/g, '')}"`);
    // A run's SVG is shown as a picture, never run as a document with scripts.
    reply.header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox");
    return reply.type(type ?? 'application/octet-stream').send(fs.createReadStream(file));
  });
}

/** Adds the viewer's routes to app. */
export function registerRoutes(app: FastifyInstance, ctx: RouteContext): void {
  registerPage(app);
  app.get('/api/info', () => ({
    model: { name: ctx.model.name, trained: ctx.model.trained },
    run: ctx.run?.dir ?? null,
    limits: ctx.limits,
    queue: ctx.queue.state,
    pollSeconds: ctx.pollSeconds,
    gridSize: ctx.gridSize,
    // "run in this browser": available with onnxruntime-web installed, else what to do.
    browser: 'missing' in ctx.ort ? { available: false, note: ctx.ort.missing } : { available: true, note: null },
  }));
  app.post('/api/predict', (request) => {
    if (!Buffer.isBuffer(request.body)) {
      throw new HttpError(415, 'send the image bytes as the body (image/jpeg, image/png or image/webp)');
    }
    return predictUpload(ctx.model, ctx.queue, request.body, ctx.limits.maxPixels);
  });
  registerRun(app, ctx);
  registerBrowser(app, { model: ctx.model, ort: ctx.ort, onnx: new OnnxExports(ctx.model, ctx.queue) });
}
