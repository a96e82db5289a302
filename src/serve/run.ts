/**
 * The run folder of an `fcn train --out DIR`, as the run view sees it: its progress (epoch,
 * config and history from the checkpoint's header alone, cheap enough to poll while training
 * runs), the curves (`historySvg`, the package's own plot spec, rendered once per checkpoint
 * version), the evaluation of the checkpoint on the val split (one at a time, kept per
 * checkpoint version) and its files, of which only regular files under the folder itself are
 * ever read (real paths resolved, so neither `..` nor a symbolic link leads out).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { EpochMetrics } from '../metrics';
import { historySvg } from '../plot';
import { readSafetensorsMetadata } from '../serialization';
import type { Device } from '../tensor';
import { type Evaluated, type EvaluationState, evaluateValSplit, GRID_KINDS } from './evaluation';
import { fileModel, type ModelSource } from './models';
import { HttpError } from './upload';

/** What the run view polls. */
export interface RunStatus {
  /** The run folder (absolute). */
  dir: string;
  /** The checkpoint's version: its modification time in ms (null before the first epoch ends). */
  version: number | null;
  /** Epochs completed. */
  epoch: number;
  /** The run's settings (`fcn train`'s config: arch, crop, lr, data, ...). */
  config: Record<string, unknown> | null;
  history: EpochMetrics[];
  /** Regular files at the top of the folder, for links. */
  files: { name: string; bytes: number }[];
  /** Why the checkpoint could not be read, when it could not. */
  problem?: string;
}

interface CheckpointHeader {
  version: number;
  epoch: number;
  config: Record<string, unknown>;
  history: EpochMetrics[];
}

/** An evaluation started for one checkpoint version: where it stands, and its pictures once done. */
interface EvaluationEntry {
  version: number;
  state: EvaluationState;
  done?: Evaluated;
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A run folder served read-only. */
export class RunFolder {
  /** The folder's real path. */
  readonly dir: string;
  readonly #checkpoint: string;
  readonly #model: ModelSource;
  readonly #data: string | undefined;
  readonly #gridSize: number;
  #curves: { version: number; svg: Promise<string> } | undefined;
  #evaluation: EvaluationEntry | undefined;

  constructor(dir: string, options: { data?: string; device?: Device; gridSize?: number } = {}) {
    const real = fs.realpathSync(dir);
    if (!fs.statSync(real).isDirectory()) throw new Error(`run: '${dir}' is not a folder`);
    this.dir = real;
    this.#checkpoint = path.join(real, 'checkpoint.safetensors');
    this.#model = fileModel(this.#checkpoint, { device: options.device });
    this.#data = options.data === undefined ? undefined : path.resolve(options.data);
    this.#gridSize = options.gridSize ?? 8;
  }

  /** The run's checkpoint file (it may not exist yet). */
  get checkpoint(): string {
    return this.#checkpoint;
  }

  /** Epoch, config and history from the checkpoint's header; null before the first checkpoint. */
  async #header(): Promise<CheckpointHeader | null> {
    const stat = await fs.promises.stat(this.#checkpoint).catch(() => null);
    if (!stat) return null;
    const metadata = await readSafetensorsMetadata(this.#checkpoint);
    const text = metadata?.['fcn-torch'];
    if (text === undefined) throw new Error(`'${this.#checkpoint}' is not an fcn-torch checkpoint`);
    const info: unknown = JSON.parse(text);
    if (!isRecord(info) || !Array.isArray(info.history) || !isRecord(info.config) || typeof info.epoch !== 'number') {
      throw new Error(`'${this.#checkpoint}': its metadata holds no epoch, history and config`);
    }
    return { version: stat.mtimeMs, epoch: info.epoch, config: info.config, history: info.history as EpochMetrics[] };
  }

  /** What the run view shows of the run's progress. */
  async status(): Promise<RunStatus> {
    const files = (await fs.promises.readdir(this.dir, { withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => ({ name: e.name, bytes: fs.statSync(path.join(this.dir, e.name)).size }))
      .sort((a, b) => a.name.localeCompare(b.name));
    const base = { dir: this.dir, files };
    try {
      const header = await this.#header();
      if (!header) return { ...base, version: null, epoch: 0, config: null, history: [] };
      const { version, epoch, config, history } = header;
      return { ...base, version, epoch, config, history };
    } catch (err) {
      return { ...base, version: null, epoch: 0, config: null, history: [], problem: (err as Error).message };
    }
  }

  /** The curves of the checkpoint's history as SVG, rendered once per checkpoint version. */
  async curves(): Promise<string> {
    const header = await this.#header();
    if (!header || header.history.length === 0) throw new HttpError(404, 'no epoch has finished yet: no curves');
    if (this.#curves?.version !== header.version) {
      this.#curves = { version: header.version, svg: historySvg(header.history) };
    }
    return this.#curves.svg;
  }

  /** The evaluation of the current checkpoint, started when asked (start) and none is kept for it. */
  async evaluation(start: boolean): Promise<EvaluationState & { current: boolean }> {
    const header = await this.#header().catch(() => null);
    const kept = this.#evaluation;
    const current = header !== null && kept?.version === header.version;
    const running = kept?.state.state === 'running';
    if (start && header && !current && !running) this.#evaluate(header);
    const state = this.#evaluation?.state ?? { state: 'none' as const };
    return { ...state, current: header !== null && this.#evaluation?.version === header.version };
  }

  #evaluate(header: CheckpointHeader): void {
    const entry: EvaluationEntry = {
      version: header.version,
      state: { state: 'running', epoch: header.epoch, done: 0, total: 0 },
    };
    const previous = this.#evaluation;
    this.#evaluation = entry;
    const root = this.#data ?? (typeof header.config.data === 'string' ? header.config.data : undefined);
    const work = async () => {
      if (!root) throw new Error("the checkpoint's config names no data folder: start fcn serve with --data");
      if (!fs.existsSync(root)) throw new Error(`the run's data folder '${root}' does not exist (give --data)`);
      const model = await this.#model.load();
      const dataset = model.dataset && { ...model.dataset, splitFile: path.join(this.dir, 'split.json') };
      return evaluateValSplit(model, header.epoch, root, dataset, this.#gridSize, (done, total) => {
        entry.state = { state: 'running', epoch: header.epoch, done, total };
      });
    };
    work().then(
      (done) => {
        entry.done = done;
        entry.state = { state: 'done', ...done.result };
      },
      (err: unknown) => {
        entry.state = { state: 'failed', epoch: header.epoch, error: (err as Error).message };
        // Keep showing the last good evaluation's pictures meanwhile.
        if (previous?.done) entry.done = previous.done;
      },
    );
  }

  /** A grid picture (PNG) of the last finished evaluation. */
  picture(index: number, kind: string): Buffer {
    const key = `${index}/${kind}`;
    const found = GRID_KINDS.includes(kind as (typeof GRID_KINDS)[number])
      ? this.#evaluation?.done?.pictures.get(key)
      : undefined;
    if (!found) throw new HttpError(404, `no picture '${key}' in the last evaluation`);
    return found;
  }

  /**
   * The real path of a regular file under the run folder named by relative; an HttpError
   * (404) for anything else: paths leading out (`..`, absolute, through a link), folders,
   * files that do not exist.
   */
  async file(relative: string): Promise<string> {
    const refuse = () => new HttpError(404, `no file '${relative}' in the run folder`);
    if (relative.length === 0 || relative.includes('\0') || path.isAbsolute(relative)) throw refuse();
    const real = await fs.promises.realpath(path.resolve(this.dir, relative)).catch(() => {
      throw refuse();
    });
    if (!real.startsWith(this.dir + path.sep)) throw refuse();
    const stat = await fs.promises.stat(real);
    if (!stat.isFile()) throw refuse();
    return real;
  }
}
