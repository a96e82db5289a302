/**
 * Loads the compiled addon and describes what it exports. Everything else in src/ talks to
 * libtorch through the handles typed here; users never see them.
 * @internal
 */
import fs from 'node:fs';
import path from 'node:path';
import { isMainThread } from 'node:worker_threads';

/** A libtorch tensor owned by a JS object. */
export interface NativeTensor {
  readonly shape: number[];
  readonly dtype: string;
  readonly device: string;
  requiresGrad: boolean;
  readonly grad: NativeTensor | null;
  readonly disposed: boolean;
  toTypedArray(): Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
  item(): number | boolean;
  backward(gradient?: NativeTensor): void;
  dispose(): void;
}

export type NamedNativeTensors = [string, NativeTensor][];

type Pair = [number, number];
/**
 * The options object each layer kind is made from, as its creator in native/models/layers.cc
 * (or sequential.cc) reads it; the classes of src/nn check and default them first.
 */
export interface NativeLayerOptions {
  Conv2d: {
    inChannels: number;
    outChannels: number;
    kernelSize: Pair;
    stride: Pair;
    padding: Pair;
    paddingString: 'same' | 'valid' | undefined;
    dilation: Pair;
    groups: number;
    bias: boolean;
    paddingMode: 'zeros' | 'reflect' | 'replicate' | 'circular';
  };
  ConvTranspose2d: {
    inChannels: number;
    outChannels: number;
    kernelSize: Pair;
    stride: Pair;
    padding: Pair;
    outputPadding: Pair;
    dilation: Pair;
    groups: number;
    bias: boolean;
    paddingMode: 'zeros';
  };
  BatchNorm2d: { numFeatures: number; eps: number; momentum: number; affine: boolean; trackRunningStats: boolean };
  ReLU: Record<string, never>;
  Sigmoid: Record<string, never>;
  Hardswish: Record<string, never>;
  Hardsigmoid: Record<string, never>;
  Dropout: { p: number };
  MaxPool2d: { kernelSize: Pair; stride: Pair; padding: Pair; dilation: Pair; ceilMode: boolean };
  AdaptiveAvgPool2d: { outputSize: Pair };
  Flatten: { startDim: number; endDim: number };
  Linear: { inFeatures: number; outFeatures: number; bias: boolean };
  Sequential: Record<string, never>;
}

/** A kind of the native registry (native/models/registry.h). */
export interface NativeModuleKind {
  name: string;
  /** Made from an options object by createModule. */
  creatable: boolean;
  /** Has an ONNX export. */
  exportsOnnx: boolean;
}

/** A shared libtorch module (torch::nn::Module). */
export interface NativeModule {
  readonly kind: string;
  forward(input: NativeTensor): NativeTensor;
  forwardAsync(input: NativeTensor): Promise<NativeTensor>;
  /** Every named output ("out", then "aux" for a segmentation model with an aux classifier). */
  forwardOutputs(input: NativeTensor): NamedNativeTensors;
  forwardOutputsAsync(input: NativeTensor): Promise<NamedNativeTensors>;
  namedChildren(): [string, NativeModule][];
  namedParameters(recurse?: boolean): NamedNativeTensors;
  namedBuffers(recurse?: boolean): NamedNativeTensors;
  stateDict(): NamedNativeTensors;
  loadStateDict(entries: NamedNativeTensors, strict: boolean): { missingKeys: string[]; unexpectedKeys: string[] };
  train(mode: boolean): void;
  isTraining(): boolean;
  to(deviceOrDtype: string): void;
  zeroGrad(): void;
  addModule(name: string, module: NativeModule): void;
  dispose(): void;
  readonly disposed: boolean;
}

/** An ONNX attribute as the native exporter writes it. */
export type NativeOnnxAttribute =
  | { name: string; type: 'int' | 'float'; value: number }
  | { name: string; type: 'string'; value: string }
  | { name: string; type: 'ints'; value: number[] };

/** An ONNX graph before serialisation: nodes in order, weights by state-dict name. */
/** The CPU's name and the instruction sets that decide which precisions pay (libtorch's cpuinfo query). */
export interface CpuCapabilities {
  name: string;
  avx2: boolean;
  /** AVX-512 Foundation. */
  avx512: boolean;
  /** AVX-512 VNNI: int8 dot products (oneDNN's int8 kernels). */
  avx512Vnni: boolean;
  /** AVX-512 BF16: bfloat16 dot products. */
  avx512Bf16: boolean;
  /** AMX tiles for bfloat16 and for int8 matrix products. */
  amxBf16: boolean;
  amxInt8: boolean;
  /** AVX-512 BF16 or AMX-BF16: bfloat16 convolutions can beat float32 here. */
  bfloat16Units: boolean;
}

export interface NativeOnnxGraph {
  output: string;
  /** The auxiliary classifier's output ('' when not asked for). */
  aux: string;
  /** The output's shape for zeros of the probe shape. */
  outputShape: number[];
  nodes: { op: string; inputs: string[]; output: string; attributes: NativeOnnxAttribute[] }[];
  initializers: {
    name: string;
    dtype: 'float32' | 'int64' | 'int32' | 'int8' | 'uint8';
    dims: number[];
    data: Buffer;
  }[];
}

export interface NativeOptimizer {
  step(): void;
  zeroGrad(): void;
  getLrs(): number[];
  setLrs(lrs: number[]): void;
  stateDict(): NamedNativeTensors;
  loadStateDict(entries: NamedNativeTensors): void;
}

/** What one training step reports: the summed per-image loss and the pixel counts. */
export interface NativeStepResult {
  loss: number;
  correct: number;
  pixels: number;
  updated: boolean;
  allReduceWait: number;
}

export interface NativeTrainer {
  step(images: NativeTensor, labels: NativeTensor, update: boolean): Promise<NativeStepResult>;
  applyPending(): Promise<boolean>;
  evaluate(images: NativeTensor, labels: NativeTensor): Promise<{ loss: number; confusion: NativeTensor }>;
}

export interface NativeProcessGroup {
  connect(options: {
    rank: number;
    worldSize: number;
    hostsStore: boolean;
    masterAddr: string;
    masterPort: number;
    hostname: string;
    interface: string;
    timeoutMs: number;
    backend: string;
    device: string;
  }): Promise<void>;
  allReduce(t: NativeTensor, op: string): Promise<void>;
  broadcast(t: NativeTensor, root: number): Promise<void>;
  broadcastModule(module: NativeModule, root: number): Promise<void>;
  barrier(): Promise<void>;
  close(): Promise<void>;
}

export interface CreationOptions {
  dtype?: string;
  device?: string;
  requiresGrad?: boolean;
}

type Unary = (t: NativeTensor) => NativeTensor;
type Binary = (t: NativeTensor, other: NativeTensor | number) => NativeTensor;
type Reduce = (t: NativeTensor, dim?: number, keepdim?: boolean) => NativeTensor;

export interface NativeOps {
  reshape(t: NativeTensor, shape: number[]): NativeTensor;
  permute(t: NativeTensor, dims: number[]): NativeTensor;
  transpose(t: NativeTensor, dim0: number, dim1: number): NativeTensor;
  unsqueeze(t: NativeTensor, dim: number): NativeTensor;
  squeeze(t: NativeTensor, dim?: number): NativeTensor;
  flatten(t: NativeTensor, startDim: number, endDim: number): NativeTensor;
  narrow(t: NativeTensor, dim: number, start: number, length: number): NativeTensor;
  slice(t: NativeTensor, dim: number, start?: number, end?: number, step?: number): NativeTensor;
  cat(tensors: NativeTensor[], dim: number): NativeTensor;
  stack(tensors: NativeTensor[], dim: number): NativeTensor;
  index(t: NativeTensor, indices: (NativeTensor | null)[]): NativeTensor;
  sum: Reduce;
  mean: Reduce;
  argmax: Reduce;
  max: Reduce;
  add: Binary;
  sub: Binary;
  mul: Binary;
  div: Binary;
  pow: Binary;
  eq: Binary;
  ne: Binary;
  lt: Binary;
  gt: Binary;
  ge: Binary;
  le: Binary;
  logicalOr: Binary;
  maskedFill(t: NativeTensor, mask: NativeTensor, value: number): NativeTensor;
  matmul: Binary;
  neg: Unary;
  abs: Unary;
  exp: Unary;
  log: Unary;
  sqrt: Unary;
  relu: Unary;
  clone: Unary;
  detach: Unary;
  contiguous: Unary;
  softmax(t: NativeTensor, dim: number, log?: boolean): NativeTensor;
  to(t: NativeTensor, options: { dtype?: string; device?: string }): NativeTensor;
  copy_(dst: NativeTensor, src: NativeTensor): NativeTensor;
}

export interface NativeAddon {
  NativeOptimizer: new (
    kind: 'sgd' | 'adamw',
    groups: { params: NativeTensor[]; options: Record<string, number | boolean> }[],
  ) => NativeOptimizer;
  NativeTrainer: new (
    model: NativeModule,
    optimizer: NativeOptimizer | null,
    devices: string[],
    loss: {
      kind: 'chapter' | 'torchvision';
      auxWeight: number;
      ignoreIndex: number;
      labelSmoothing: number;
      classWeights?: NativeTensor;
      crossEntropy: number;
      dice: number;
      focal: number;
      focalGamma: number;
    },
    processGroup: NativeProcessGroup | null,
    accumulate: number,
  ) => NativeTrainer;
  NativeProcessGroup: new () => NativeProcessGroup;
  fcnSkip(
    stem: NativeModule,
    layer2: NativeModule,
    layer3: NativeModule,
    layer4: NativeModule,
    numClasses: number,
    outputStride: 16 | 8,
  ): NativeModule;
  predictLabels(
    model: NativeModule,
    images: NativeTensor,
    tileH: number,
    tileW: number,
    mean: readonly number[],
    std: readonly number[],
    fused: boolean,
    precision: 'float32' | 'bfloat16' | null,
  ): Promise<NativeTensor>;
  predictResized(
    model: NativeModule,
    images: NativeTensor,
    resizeSize: number,
    mean: readonly number[],
    std: readonly number[],
    fused: boolean,
    precision: 'float32' | 'bfloat16' | null,
  ): Promise<NativeTensor>;
  quantizeInt8(model: NativeModule): NativeModule;
  int8Observe(model: NativeModule, images: NativeTensor): Promise<number>;
  int8Freeze(model: NativeModule): Promise<void>;
  backends: {
    subpixelUpsampling: boolean;
    channelsLast: boolean;
    cachingCpuAllocator: boolean;
    cudaGraphs: boolean;
    cudaGraphsKept(): number;
    fusedConvolutionCalls(): number;
    fusedConvolutionsKept(): number;
    fusedInference: boolean;
    emulatedBfloat16: boolean;
    emptyCpuCache(): void;
    cachedCpuBytes(): number;
  };
  setAutocast(deviceType: string, dtype: string | null): void;
  getAutocast(deviceType: string): string | null;
  autocastRuns(deviceType: string): 'float32' | 'bfloat16';
  cpuCapabilities(): CpuCapabilities;
  fromTypedArray(data: ArrayBufferView, shape: number[], options?: CreationOptions): NativeTensor;
  zeros(shape: number[], options?: CreationOptions): NativeTensor;
  ones(shape: number[], options?: CreationOptions): NativeTensor;
  rand(shape: number[], options?: CreationOptions): NativeTensor;
  randn(shape: number[], options?: CreationOptions): NativeTensor;
  empty(shape: number[], options?: CreationOptions): NativeTensor;
  full(shape: number[], value: number, options?: CreationOptions): NativeTensor;
  arange(start: number, end: number, step: number, options?: CreationOptions): NativeTensor;
  manualSeed(seed: number | bigint): void;
  setGradEnabled(enabled: boolean): void;
  isGradEnabled(): boolean;
  setNumThreads(threads: number): void;
  getNumThreads(): number;
  liveTensors(): number;
  cudaInfo(): { built: boolean; deviceCount: number };
  cudaSynchronize(device: string): Promise<void>;
  ops: NativeOps;
  createModule<K extends keyof NativeLayerOptions>(kind: K, options: NativeLayerOptions[K]): NativeModule;
  /** Every kind of the native registry, by name. */
  moduleKinds(): NativeModuleKind[];
  resnet(block: 'basic' | 'bottleneck', layers: [number, number, number, number], numClasses: number): NativeModule;
  mobilenetV3Large(numClasses: number): NativeModule;
  segmentationModel(
    head: 'fcn' | 'deeplabv3' | 'lraspp',
    backbone: 'resnet50' | 'resnet101' | 'mobilenet_v3_large',
    numClasses: number,
    aux: boolean,
  ): NativeModule;
  /** A module's ONNX nodes and weights as its kinds write them (native/models/onnx_graph.h). */
  onnxGraph(
    module: NativeModule,
    input: string,
    opset: number,
    probe: number[],
    aux: boolean,
  ): Promise<NativeOnnxGraph>;
  init: {
    bilinearKernel(inChannels: number, outChannels: number, kernelSize: number): NativeTensor;
    xavierUniform_(t: NativeTensor, gain: number): NativeTensor;
    xavierNormal_(t: NativeTensor, gain: number): NativeTensor;
    constant_(t: NativeTensor, value: number): NativeTensor;
    uniform_(t: NativeTensor, a: number, b: number): NativeTensor;
    normal_(t: NativeTensor, mean: number, std: number): NativeTensor;
  };
  functional: {
    crossEntropy(
      input: NativeTensor,
      target: NativeTensor,
      reduction: string,
      ignoreIndex: number,
      labelSmoothing: number,
      weight?: NativeTensor,
    ): NativeTensor;
    diceLoss(input: NativeTensor, target: NativeTensor, ignoreIndex: number): NativeTensor;
    focalLoss(input: NativeTensor, target: NativeTensor, ignoreIndex: number, gamma: number): NativeTensor;
  };
  voc: {
    colormap: [number, number, number][];
    voidColour: [number, number, number];
    ignoreIndex: number;
    labelIndices(rgb: NativeTensor): Promise<NativeTensor>;
    paletteLabelIndices(
      scanlines: NativeTensor,
      height: number,
      width: number,
      palette: NativeTensor,
    ): Promise<NativeTensor>;
    cropBatch(
      images: NativeTensor[],
      labels: NativeTensor[],
      crops: number[],
      cropH: number,
      cropW: number,
      mean: number[],
      std: number[],
      ignore: number,
    ): Promise<[NativeTensor, NativeTensor]>;
  };
  loadWeights(path: string): Promise<{ tensors: NamedNativeTensors; metadata: Record<string, string> }>;
  saveSafetensors(entries: NamedNativeTensors, path: string, metadata?: Record<string, string>): Promise<void>;
  /** The code to end the process with at once if native work is still running at exit. */
  prepareExit(code: number): void;
  torchVersion: string;
  cudaBuild: boolean;
}

const root = path.resolve(__dirname, '..', '..');
/** FCN_TORCH_ADDON names one build to use (the CUDA one, say); else the builds in order. */
const candidates = process.env.FCN_TORCH_ADDON
  ? [path.resolve(process.env.FCN_TORCH_ADDON)]
  : [
      path.join(root, 'build-cmake', 'Release', 'fcn_torch.node'), // cmake-js, the main build
      path.join(root, 'build', 'Release', 'fcn_torch.node'), // node-gyp, the alternative
      path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'fcn_torch.node'), // shipped by npm pack
    ];

/**
 * The setup command for the package manager that installed the package: pnpm keeps packages
 * under node_modules/.pnpm, yarn's PnP runs with process.versions.pnp.
 */
function setupCommand(): string {
  if ('pnp' in process.versions) return 'yarn fcn setup';
  if (root.split(path.sep).includes('.pnpm')) return 'pnpm exec fcn setup';
  return 'npx fcn-torch setup (yarn: yarn fcn setup)';
}

/** Why no build loaded, in one line, where the package's setup is the cause; else null. */
function notSetUp(): string | null {
  const link = path.join(root, 'deps', 'libtorch');
  let target: string | null = null;
  try {
    target = fs.readlinkSync(link);
  } catch {}
  if (fs.existsSync(link)) return null;
  if (target !== null) {
    // The link is there but what it pointed at is gone (the shared cache was cleared?).
    return `fcn-torch: its libtorch is gone (deps/libtorch points at ${target}, which does not exist). Run \`${setupCommand()}\` again`;
  }
  // No link: the package's install script never ran (pnpm 10 and yarn run dependencies'
  // scripts only when the project allows them; npm --ignore-scripts).
  return `fcn-torch is not set up: its install script did not run (pnpm and yarn run it only when allowed). Run \`${setupCommand()}\` once`;
}

function loadAddon(): NativeAddon {
  const errors: string[] = [];
  for (const file of candidates) {
    if (!fs.existsSync(file)) {
      errors.push(`${file}: not built`);
      continue;
    }
    try {
      return require(file) as NativeAddon;
    } catch (err) {
      errors.push(`${file}: ${(err as Error).message}`);
    }
  }
  const setup = process.env.FCN_TORCH_ADDON ? null : notSetUp();
  if (setup) throw new Error(setup);
  throw new Error(
    `fcn-torch: the native addon could not be loaded.\n${errors.map((e) => `  - ${e}`).join('\n')}\n` +
      'Run `npm install` in the package (it resolves libtorch, then uses the prebuilt addon or compiles one), ' +
      'or `npm rebuild fcn-torch --build-from-source`; see docs/installing.md.',
  );
}

/**
 * The addon, loaded once per JS environment. Every promise it returns rejects with the stack
 * of the JS code that made the call (the native side keeps it).
 */
export const native: NativeAddon = loadAddon();

// A job still running on the torch thread when the process exits cannot be stopped, and
// libtorch must not be torn down under it: the addon then ends the process at once, with
// the code the process is exiting with.
if (isMainThread) {
  process.on('exit', (code) => native.prepareExit(typeof code === 'number' ? code : 0));
}
