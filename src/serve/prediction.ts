/**
 * One prediction of the viewer: an uploaded image, checked by its header, waits its turn in
 * the model's queue, is decoded and labelled whole at its own size (`predict`, 'whole' mode)
 * and comes back as the page needs it: the class ids, the classes found with their share of
 * the pixels, the colours, and the time each part took.
 */

import { classColour } from '../data/classes';
import { classesFound } from '../image';
import type { Tensor } from '../tensor';
import { autocastRuns } from '../torch';
import { labelImage, type ModelSource } from './models';
import type { JobQueue } from './queue';
import { decodeUpload, HttpError, inspectUpload } from './upload';

/** A class found in a prediction. */
export interface FoundClass {
  id: number;
  name: string;
  pixels: number;
  /** pixels / all pixels. */
  share: number;
}

/** What POST /api/predict answers. */
export interface PredictionResponse {
  width: number;
  height: number;
  /** Class ids, row-major, base64 of uint8 (bytesPerLabel 1) or little-endian int32 (4). */
  labels: string;
  bytesPerLabel: 1 | 4;
  /** Class names, index = class id. */
  classes: readonly string[];
  /** RGB colour of each class, index = class id. */
  palette: [number, number, number][];
  /** Classes present, most pixels first. */
  found: FoundClass[];
  /** Milliseconds: waiting for the model's turn, (re)loading it, decoding, predicting, all of it. */
  timing: { queueMs: number; loadMs: number; decodeMs: number; predictMs: number; totalMs: number };
  /** What the model is (architecture, epoch, file). */
  model: string;
  trained: boolean;
  /** The precision the forward ran in (`torch.autocastRuns` for the model's device; `fcn serve --precision`). */
  precision: 'float32' | 'bfloat16';
}

/** Labels an uploaded image with the model of source, one at a time through queue. */
export async function predictUpload(
  source: ModelSource,
  queue: JobQueue,
  bytes: Buffer,
  maxPixels: number,
): Promise<PredictionResponse> {
  const started = performance.now();
  const header = await inspectUpload(bytes, maxPixels);
  return queue.run(async () => {
    const turn = performance.now();
    const model = await source.load().catch((err: unknown) => {
      throw new HttpError(503, `the model cannot be loaded: ${(err as Error).message}`);
    });
    const loaded = performance.now();
    const image = await decodeUpload(bytes, header, maxPixels);
    const decoded = performance.now();
    let ids: Uint8Array | Int32Array;
    let narrowLabels: Tensor;
    try {
      const labels = await labelImage(model, image.pixels);
      const wide = model.classes.length > 256;
      narrowLabels = labels.to(wide ? 'int32' : 'uint8');
      ids = narrowLabels.toTypedArray() as Uint8Array | Int32Array;
      labels.dispose();
    } finally {
      image.pixels.dispose();
    }
    const done = performance.now();
    const found = classesFound(narrowLabels, model.classes);
    narrowLabels.dispose();
    return {
      width: image.width,
      height: image.height,
      labels: Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength).toString('base64'),
      bytesPerLabel: ids instanceof Uint8Array ? 1 : 4,
      classes: model.classes,
      palette: model.palette ?? model.classes.map((_, id) => classColour(id)),
      found,
      timing: {
        queueMs: turn - started,
        loadMs: loaded - turn,
        decodeMs: decoded - loaded,
        predictMs: done - decoded,
        totalMs: performance.now() - started,
      },
      model: model.label,
      trained: source.trained,
      precision: autocastRuns(String(model.net.parameters()[0]?.device ?? 'cpu').startsWith('cuda') ? 'cuda' : 'cpu'),
    };
  });
}
