/**
 * `serve(options)`: the local web viewer of predictions, evaluations and training runs (the
 * page in ./page, the API in ./routes). It is built on fastify: a small, well-kept server
 * whose body limits, content-type parsers and error handler give the viewer's safety rules
 * without extra code (an oversized upload is cut off while it streams, anything but image
 * bytes is a 415, every thrown HttpError becomes its status and message), and which needs no
 * plugins for a handful of routes. Safe by default: it listens on 127.0.0.1 (another host
 * only when asked, with a warning), answers only to loopback Host names there (a web page
 * elsewhere cannot reach it through DNS rebinding), and limits uploads in bytes and pixels.
 */
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { checkInteger, checkString } from '../checks';
import type { Device } from '../tensor';
import { findOrtWeb } from './browser';
import { checkedLimits, type ServeLimits } from './limits';
import { chapterModel, fileModel, type ModelSource } from './models';
import { JobQueue } from './queue';
import { registerRoutes } from './routes';
import { RunFolder } from './run';
import { HttpError } from './upload';

export { DEFAULT_LIMITS, type ServeLimits } from './limits';
export { chapterModel, fileModel, type LoadedModel, type ModelSource, segmentationModel } from './models';

/** Options of {@link serve}. */
export interface ServeOptions {
  /**
   * The model that labels uploads (see {@link chapterModel}, {@link fileModel}); default the
   * run's checkpoint when `run` is given, else the chapter's FCN-32s with fresh weights.
   */
  model?: ModelSource;
  /** An `fcn train --out` folder to show in the run view. */
  run?: string;
  /** The VOC folder whose val split evaluates the run (default the one the run trained on). */
  data?: string;
  /** Where models run (default 'cpu'). */
  device?: Device;
  /** Address to listen on (default '127.0.0.1'; anything not loopback is reachable by others). */
  host?: string;
  /** TCP port (default 8080; 0 picks a free one). */
  port?: number;
  limits?: Partial<ServeLimits>;
  /** Validation images shown in the run view's grid (default 8). */
  gridSize?: number;
  /** Seconds between the run view's polls while it is open (default 2). */
  pollSeconds?: number;
  /** Where the warning about a non-loopback host goes (default console.error). */
  warn?: (line: string) => void;
}

/** A running viewer. */
export interface ViewerServer {
  /** The page's address, e.g. `http://127.0.0.1:8080/`. */
  readonly url: string;
  /** Stops listening and ends open connections. */
  close(): Promise<void>;
}

/** True for addresses that only this machine reaches. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127(\.\d{1,3}){3}$/.test(bare);
}

/** The host name of a Host header ('127.0.0.1:8080' -> '127.0.0.1', '[::1]:80' -> '::1'). */
function hostName(header: string | undefined): string {
  if (!header) return '';
  const bracketed = /^\[([^\]]+)\]/.exec(header);
  return bracketed ? bracketed[1] : header.replace(/:\d+$/, '');
}

/** Answers every error with its status and `{ error: message }`; never crashes the process. */
function handleErrors(app: FastifyInstance, limits: ServeLimits): void {
  app.setErrorHandler((err, request, reply) => {
    const e = err as Error & { statusCode?: number; code?: string };
    let status = e instanceof HttpError ? e.statusCode : (e.statusCode ?? 500);
    let message = e.message;
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      message = `the upload is over the limit of ${limits.maxUploadBytes} bytes`;
    } else if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      message = `send the image's bytes as image/jpeg, image/png or image/webp (got ${request.headers['content-type']})`;
    } else if (status >= 500 && !(e instanceof HttpError)) {
      status = 500;
      request.log.error(err);
    }
    if (status === 503) reply.header('retry-after', '1');
    reply.status(status).send({ error: message });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ error: `no such page or API: ${request.method} ${request.url}` });
  });
}

/** Loopback Host names only (when bound to loopback), and headers that keep the page to itself. */
function guard(app: FastifyInstance, loopbackOnly: boolean): void {
  app.addHook('onRequest', async (request) => {
    const name = hostName(request.headers.host);
    if (loopbackOnly && !isLoopback(name)) {
      throw new HttpError(
        403,
        `Host '${request.headers.host ?? ''}' refused: this viewer answers to loopback names only`,
      );
    }
  });
  app.addHook('onSend', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cross-origin-resource-policy', 'same-origin');
    reply.header('cache-control', 'no-store');
    // Cross-origin isolation, so that ONNX Runtime's WebAssembly threads (SharedArrayBuffer)
    // run the model in the page; nothing is embedded from elsewhere anyway.
    reply.header('cross-origin-opener-policy', 'same-origin');
    reply.header('cross-origin-embedder-policy', 'require-corp');
    if (reply.hasHeader('content-security-policy')) return;
    // 'wasm-unsafe-eval' lets the page compile ONNX Runtime's WebAssembly (served from here).
    reply.header(
      'content-security-policy',
      "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    );
  });
}

/**
 * Starts the viewer: a page to label images with a model (overlay, legend, class under the
 * pointer, time taken; with "run in this browser", in the page itself, by onnxruntime-web
 * when it is installed) and, with `run`, the run view of a training run (curves updated while
 * it trains, the last evaluation's per-class IoU, confusion matrix and validation grid).
 * Resolves once it listens.
 */
export async function serve(options: ServeOptions = {}): Promise<ViewerServer> {
  const limits = checkedLimits(options.limits);
  const host = checkString(options.host ?? '127.0.0.1', 'host');
  const port = checkInteger(options.port ?? 8080, 'port', 0, 65535);
  const gridSize = checkInteger(options.gridSize ?? 8, 'gridSize', 0);
  const pollSeconds = checkInteger(options.pollSeconds ?? 2, 'pollSeconds', 1);
  const run = options.run === undefined ? undefined : new RunFolder(checkString(options.run, 'run'), options);
  const model =
    options.model ??
    (run ? fileModel(run.checkpoint, { device: options.device }) : chapterModel('fcn32s', { device: options.device }));
  const loopbackOnly = isLoopback(host);
  if (!loopbackOnly) {
    (options.warn ?? console.error)(
      `warning: the viewer listens on ${host}: anyone who reaches this machine can use it and read the run folder`,
    );
  }
  // forceCloseConnections: close() ends the browsers' keep-alive connections instead of waiting for them.
  // Clients that trickle headers or a body are answered 408 and cut off once their time is up,
  // checked every second (Node checks every 30 s by default).
  const app = Fastify({
    bodyLimit: limits.maxUploadBytes,
    requestTimeout: limits.requestSeconds * 1000,
    http: { headersTimeout: limits.headersSeconds * 1000, connectionsCheckingInterval: 1000 },
    forceCloseConnections: true,
    logger: false,
  });
  handleErrors(app, limits);
  guard(app, loopbackOnly);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    ['image/jpeg', 'image/png', 'image/webp', 'application/octet-stream'],
    { parseAs: 'buffer' },
    (_request, body, done) => done(null, body),
  );
  const queue = new JobQueue(limits.maxWaiting);
  registerRoutes(app, { model, queue, run, limits, pollSeconds, gridSize, ort: findOrtWeb() });
  await app.listen({ host, port });
  const address = app.server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}/`,
    close: () => app.close(),
  };
}
