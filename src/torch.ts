/**
 * The `torch` namespace: making tensors, the random seed, grad mode, threads and memory.
 */
import { checkInteger, checkOneOf, checkShape, checkTensor } from './checks';
import { native } from './native';
import { type Device, type DType, Tensor, type TypedArray } from './tensor';
import { keep, tidy } from './tidy';

export type { Device, DType, TypedArray };
export { keep, Tensor, tidy };

/** Options of the tensor factories. */
export interface TensorOptions<D extends DType = DType> {
  /** Element type (default float32; for `tensor()`, the data's own). */
  dtype?: D;
  /** Device to create on (default `'cpu'`). */
  device?: Device;
  /** Whether autograd tracks the new tensor (default false). */
  requiresGrad?: boolean;
}

/** Nested arrays of numbers or booleans, as PyTorch's `torch.tensor([[1, 2], [3, 4]])`. */
export type NestedArray = number | boolean | NestedArray[];

/** Shape of a rectangular nested array; throws naming the first ragged place. */
function shapeOf(data: NestedArray, where = 'data'): number[] {
  if (!Array.isArray(data)) return [];
  if (data.length === 0) return [0];
  const inner = shapeOf(data[0], `${where}[0]`);
  data.forEach((d, i) => {
    const s = shapeOf(d, `${where}[${i}]`);
    if (s.length !== inner.length || s.some((v, k) => v !== inner[k])) {
      throw new RangeError(`tensor: ${where}[${i}] has shape [${s}], expected [${inner}] (ragged nested array)`);
    }
  });
  return [data.length, ...inner];
}

/**
 * A tensor from a TypedArray (its dtype follows the array: Float32Array is float32,
 * BigInt64Array int64, ...) or from nested arrays (int64 when all numbers are integers,
 * else float32; bool for booleans), like `torch.tensor`. The data is copied.
 */
export function tensor(
  data: Float32Array,
  options?: TensorOptions<'float32'> & { shape?: number[] },
): Tensor<'float32'>;
export function tensor(
  data: Float64Array,
  options?: TensorOptions<'float64'> & { shape?: number[] },
): Tensor<'float64'>;
export function tensor(data: BigInt64Array, options?: TensorOptions<'int64'> & { shape?: number[] }): Tensor<'int64'>;
export function tensor(data: Int32Array, options?: TensorOptions<'int32'> & { shape?: number[] }): Tensor<'int32'>;
export function tensor(data: Uint8Array, options?: TensorOptions<'uint8'> & { shape?: number[] }): Tensor<'uint8'>;
export function tensor<D extends DType>(
  data: TypedArray | NestedArray,
  options: TensorOptions<D> & { shape?: number[] },
): Tensor<D>;
export function tensor(data: TypedArray | NestedArray, options?: TensorOptions & { shape?: number[] }): Tensor;
export function tensor(data: TypedArray | NestedArray, options: TensorOptions & { shape?: number[] } = {}): Tensor {
  const { shape, ...rest } = options;
  if (ArrayBuffer.isView(data)) {
    return new Tensor(native.fromTypedArray(data, checkShape(shape ?? [data.length]), rest));
  }
  const inferred = shapeOf(data);
  const flat: (number | boolean)[] = Array.isArray(data)
    ? ((data as unknown[]).flat(Number.POSITIVE_INFINITY) as (number | boolean)[])
    : [data];
  let array: TypedArray;
  let dtype: DType;
  if (flat.length > 0 && flat.every((v) => typeof v === 'boolean')) {
    array = Uint8Array.from(flat, (v) => (v ? 1 : 0));
    dtype = 'bool';
  } else if (flat.every((v) => typeof v === 'number')) {
    const numbers = flat as number[];
    if (numbers.length > 0 && numbers.every(Number.isSafeInteger)) {
      array = BigInt64Array.from(numbers, (v) => BigInt(v));
      dtype = 'int64';
    } else {
      array = Float32Array.from(numbers);
      dtype = 'float32';
    }
  } else {
    throw new TypeError('tensor: data must hold only numbers or only booleans');
  }
  const target = checkShape(shape ?? inferred);
  return new Tensor(native.fromTypedArray(array, target, { ...rest, dtype: rest.dtype ?? dtype }));
}

/** A tensor filled with 0. */
export function zeros<D extends DType = 'float32'>(shape: number[], options?: TensorOptions<D>): Tensor<D> {
  return new Tensor<D>(native.zeros(checkShape(shape), options));
}
/** A tensor filled with 1. */
export function ones<D extends DType = 'float32'>(shape: number[], options?: TensorOptions<D>): Tensor<D> {
  return new Tensor<D>(native.ones(checkShape(shape), options));
}
/** Uniform samples in [0, 1); the same numbers as PyTorch's `torch.rand` for the same seed. */
export function rand<D extends DType = 'float32'>(shape: number[], options?: TensorOptions<D>): Tensor<D> {
  return new Tensor<D>(native.rand(checkShape(shape), options));
}
/** Standard normal samples; the same numbers as PyTorch's `torch.randn` for the same seed. */
export function randn<D extends DType = 'float32'>(shape: number[], options?: TensorOptions<D>): Tensor<D> {
  return new Tensor<D>(native.randn(checkShape(shape), options));
}
/** A tensor with uninitialised memory (fill it before reading). */
export function empty<D extends DType = 'float32'>(shape: number[], options?: TensorOptions<D>): Tensor<D> {
  return new Tensor<D>(native.empty(checkShape(shape), options));
}
/** A tensor filled with value. */
export function full<D extends DType = 'float32'>(
  shape: number[],
  value: number,
  options?: TensorOptions<D>,
): Tensor<D> {
  return new Tensor<D>(native.full(checkShape(shape), value, options));
}
/**
 * Values from start (inclusive) to end (exclusive) by step; `arange(n)` is 0..n-1. int64
 * when all arguments are integers, else float32, as in PyTorch.
 */
export function arange(start: number, end?: number, step = 1, options?: TensorOptions): Tensor {
  const [from, to] = end === undefined ? [0, start] : [start, end];
  return new Tensor(native.arange(from, to, step, options));
}
/** Concatenates tensors along an existing dimension. */
export function cat(tensors: Tensor[], dim = 0): Tensor {
  return new Tensor(native.ops.cat(tensors.map(nativeOf), dim));
}
/** Stacks tensors along a new dimension. */
export function stack(tensors: Tensor[], dim = 0): Tensor {
  return new Tensor(native.ops.stack(tensors.map(nativeOf), dim));
}

const nativeOf = (t: Tensor, i: number) => checkTensor(t, `tensors[${i}]`);

/** Seeds the global generator (PyTorch's `torch.manual_seed`): same seed, same numbers. */
export function manualSeed(seed: number | bigint): void {
  native.manualSeed(seed);
}

/**
 * Runs fn with autograd off (PyTorch's `torch.no_grad()`), restoring the previous mode when fn
 * returns. An async call started inside fn (`forwardAsync`, `predict`) runs without autograd
 * to its end. The mode is one per process, so code of an async fn that runs after an `await`
 * has the mode of that moment: wrap each call instead, as in
 * `for (...) y = await torch.noGrad(() => net.forwardAsync(x))`.
 */
export function noGrad<T>(fn: () => T): T {
  const previous = native.isGradEnabled();
  native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(previous);
  }
}

/** Whether autograd records operations now. */
export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

/**
 * Threads libtorch uses for one operation (intra-op parallelism): for synchronous calls on
 * this thread, and for the async calls from their next one on (they run on one native
 * thread, which takes the count before each call).
 */
export function setNumThreads(threads: number): void {
  native.setNumThreads(checkInteger(threads, 'threads', 1, 65_536));
}
/** Threads libtorch uses for one operation. */
export function getNumThreads(): number {
  return native.getNumThreads();
}

/** Tensor handles alive in this process (made and not yet disposed or collected). */
export function liveTensors(): number {
  return native.liveTensors();
}

/** CUDA support: whether this build has it, and how many GPUs it sees. */
export const cuda = {
  /** True when this build has CUDA and a GPU is visible. */
  isAvailable(): boolean {
    const info = native.cudaInfo();
    return info.built && info.deviceCount > 0;
  },
  /** GPUs visible to this build (0 on a CPU build). */
  deviceCount(): number {
    return native.cudaInfo().deviceCount;
  },
  /** Settles once the work queued on the GPU (default 'cuda', the current one) is done. */
  async synchronize(device: Device = 'cuda'): Promise<void> {
    return native.cudaSynchronize(device);
  },
};

/** The device types whose models {@link setAutocast} applies to. */
export const AUTOCAST_DEVICE_TYPES = ['cpu', 'cuda'] as const;

/** The reduced precisions that autocast runs forwards in. */
export type AutocastDtype = 'bfloat16';

/**
 * Mixed precision, as PyTorch's `torch.autocast(deviceType, dtype=torch.bfloat16)` around the
 * forward: from now on, every forward of a model on `deviceType` (`forward`, `predict`, the
 * forward of each training and evaluation step) runs the operations autocast lists
 * (convolutions, matrix products) in bfloat16, the others in float32; backward and the
 * optimizer step stay float32, and outputs come back as float32. On a GPU the weights and
 * inputs are also laid out channels-last, where cuDNN's bfloat16 convolutions are fastest.
 * `null` turns it off. Results differ from float32 by bfloat16's rounding (about 1e-2
 * relative), so it is a choice, off by default; it pays on GPUs with bfloat16 tensor cores
 * (A100, H100) and CPUs with AMX or AVX-512 BF16. A CPU without them would emulate every
 * bfloat16 product, many times slower than float32 (14x for `predict` on an AVX2 EPYC), so
 * there CPU autocast runs float32 unless `backends.emulatedBfloat16` asks for PyTorch's
 * behaviour ({@link autocastRuns} tells which runs). Under CPU autocast the FCN's sub-pixel
 * upsampling stays float32 (its bfloat16 transposed convolution is slower even with AMX).
 * The setting is process-wide, since forwards run on fcn-torch's own thread, and is read when
 * a forward runs: an async call queued before it is turned off is affected by the change, so
 * await such calls first.
 */
export function setAutocast(deviceType: (typeof AUTOCAST_DEVICE_TYPES)[number], dtype: AutocastDtype | null): void {
  const type = checkOneOf(deviceType, 'deviceType', AUTOCAST_DEVICE_TYPES);
  native.setAutocast(type, dtype === null ? null : checkOneOf(dtype, 'dtype', ['bfloat16'] as const));
}

/**
 * The precision forwards on `deviceType` run in now: 'bfloat16' when {@link setAutocast} set
 * it and the hardware has bfloat16 units (on a CPU: AVX-512 BF16 or AMX-BF16; or
 * `backends.emulatedBfloat16` is set), else 'float32'. What the CLI and the bench report.
 */
export function autocastRuns(deviceType: (typeof AUTOCAST_DEVICE_TYPES)[number]): 'float32' | 'bfloat16' {
  return native.autocastRuns(checkOneOf(deviceType, 'deviceType', AUTOCAST_DEVICE_TYPES));
}

/** The precision set by {@link setAutocast} for `deviceType`, or `null` (float32). */
export function getAutocast(deviceType: (typeof AUTOCAST_DEVICE_TYPES)[number]): AutocastDtype | null {
  return native.getAutocast(checkOneOf(deviceType, 'deviceType', AUTOCAST_DEVICE_TYPES)) as AutocastDtype | null;
}

/** The libtorch version this build links. */
export const version: string = native.torchVersion;

/**
 * Switches for fcn-torch's speed-ups (like `torch.backends`), on by default except
 * `cudaGraphs`, `fusedInference` and `emulatedBfloat16`; turning one off is for measuring what
 * it brings, results are the same either way (`fusedInference`: within 1e-4 relative), but
 * for `emulatedBfloat16`, which changes them.
 * - `subpixelUpsampling`: a CPU float32 ConvTranspose2d whose kernel is twice its stride
 *   (>= 8) runs as a 2x2 convolution followed by a fused pixel shuffle and crop, in inference
 *   and in training (its gradient through the same decomposition).
 * - `channelsLast`: on the CPU, models keep 4-d weights channels-last (NHWC) and inputs are
 *   laid out to match, which oneDNN's convolutions run fastest on.
 * - `cachingCpuAllocator`: freed CPU tensor memory of 128 KiB and more is kept (up to 4 GiB)
 *   and reused for tensors of its size down to half of it, as PyTorch's CUDA allocator
 *   reuses its blocks on the GPU: a training step then touches few fresh pages. Within a training step (`Trainer.step`, `train`)
 *   memory in use plus memory kept stays within 1.25x the most ever in use at once (a block
 *   that must be fresh evicts kept ones first), so the cache adds little to training's peak;
 *   inference keeps a block of every size. `emptyCpuCache()` gives the kept memory back and
 *   `cachedCpuBytes()` tells how much is kept.
 * - `cudaGraphs` (off by default; CUDA builds): a forward on a GPU without autograd (under
 *   `noGrad`, in `predict`, in evaluation) of a model whose modules are all in eval mode is
 *   captured as a CUDA graph on its second call with an input of the same shape, layout and
 *   dtype, and replayed from then on: its kernels launch as one, which takes the launch
 *   cost off small batches (as torch.compile's "reduce-overhead" mode). Weights changed in
 *   place (loaded, trained) are seen; weights moved or modules added are captured again;
 *   outputs are copies.
 *   Each graph keeps its activations' GPU memory, for at most 8 graphs (the least recently
 *   used goes; turning the switch off frees them at the next forward). A forward that cannot
 *   be captured runs as usual. Without a CUDA build it changes nothing. `cudaGraphsKept()`
 *   tells how many captured graphs are kept.
 * - `fusedInference` (off by default, so that a forward stays PyTorch-exact; `predict` asks
 *   for it itself unless given `fused: false`): a CPU model in eval mode run without
 *   gradients (under `noGrad`) runs each Conv2d + BatchNorm2d (+ ReLU, and in ResNet blocks
 *   + the residual add) as one oneDNN convolution with the BatchNorm folded into its weight
 *   and bias, the weight kept in oneDNN's layout for the input's size. The folded weights are
 *   kept (two more copies of the convolution weights: folded, and packed for the last input
 *   size) and made again whenever the weights, running statistics or input size change.
 *   Repacking for each new input size costs about what an unfused call does, so inputs of
 *   one size gain most. Logits stay within 1e-4 relative of the layer-by-layer forward.
 *   Training, calls that record gradients and CPU autocast always run the layers one by one.
 *   `fusedConvolutionCalls()` counts the convolutions run as oneDNN fused convolutions
 *   (channels-last inputs) since the process started, and `fusedConvolutionsKept()` the
 *   convolutions whose folded weights are kept now: diagnostics. A model's folded weights
 *   are dropped at its first forward in train mode or on a GPU, and with the model.
 * - `emulatedBfloat16` (off by default; it changes results): CPU autocast and `precision:
 *   'bfloat16'` run bfloat16 even on a CPU without bfloat16 units (no AVX-512 BF16, no AMX),
 *   emulated and slower than float32, as PyTorch does there: for matching PyTorch's bfloat16
 *   numbers, or testing them, on such a CPU.
 */
export const backends: {
  subpixelUpsampling: boolean;
  channelsLast: boolean;
  cachingCpuAllocator: boolean;
  cudaGraphs: boolean;
  cudaGraphsKept(): number;
  fusedInference: boolean;
  emulatedBfloat16: boolean;
  fusedConvolutionCalls(): number;
  fusedConvolutionsKept(): number;
  emptyCpuCache(): void;
  cachedCpuBytes(): number;
} = native.backends;
