/**
 * Class weights against class imbalance: median frequency balancing (Eigen & Fergus, 2015)
 * from a training split, or weights a user keeps in a file.
 */
import { readText } from './classes';

/**
 * Median frequency balancing: with freq(c) the pixels of class c over all pixels of the
 * images where c appears, weight(c) = median(freq) / freq(c). Classes that appear nowhere
 * get 0 (no pixel of theirs is trained on anyway). Labels are class ids, ignore left out.
 */
export function medianFrequencyWeights(
  labels: readonly ArrayLike<number>[],
  numClasses: number,
  ignore: number,
): number[] {
  const pixels = new Array<number>(numClasses).fill(0);
  const imagePixels = new Array<number>(numClasses).fill(0);
  const counts = new Array<number>(numClasses);
  for (const ids of labels) {
    counts.fill(0);
    let labelled = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (id === ignore || id < 0 || id >= numClasses) continue;
      counts[id] += 1;
      labelled += 1;
    }
    for (let c = 0; c < numClasses; c++) {
      if (counts[c] === 0) continue;
      pixels[c] += counts[c];
      imagePixels[c] += labelled;
    }
  }
  const freq = pixels.map((p, c) => (p > 0 ? p / imagePixels[c] : 0));
  const present = freq.filter((f) => f > 0).sort((a, b) => a - b);
  if (present.length === 0) throw new Error('the training split has no labelled pixel to weigh its classes by');
  const mid = present.length >> 1;
  const median = present.length % 2 ? present[mid] : (present[mid - 1] + present[mid]) / 2;
  return freq.map((f) => (f > 0 ? median / f : 0));
}

/** Class weights from a file: a JSON array of numbers, or one number a line; one per class, each >= 0. */
export function readClassWeights(file: string, numClasses: number): number[] {
  let text: string;
  try {
    text = readText(file).trim();
  } catch (err) {
    throw new Error(`cannot read the class weights '${file}': ${(err as Error).message}`);
  }
  let values: unknown[];
  try {
    values = text.startsWith('[')
      ? JSON.parse(text)
      : text.split(/\s+/).map((v) => (v === '' ? Number.NaN : Number(v)));
  } catch {
    values = [Number.NaN];
  }
  if (!Array.isArray(values) || !values.every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0)) {
    throw new Error(`the class weights '${file}' must be numbers >= 0 (a JSON array, or one a line)`);
  }
  if (values.length !== numClasses) {
    throw new Error(
      `the class weights '${file}' give ${values.length} weights for the dataset's ${numClasses} classes`,
    );
  }
  return values as number[];
}
