/**
 * ONNX export: a model's graph as its module kinds write it (native/models/onnx_graph.h),
 * serialised with ONNX's own protobuf schema (the `onnx-proto` package), plus what a runtime
 * needs around it: named, optionally dynamic inputs and outputs, the argmax and the
 * ImageNet normalisation inside the graph on request, and the model's facts as metadata.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { checkBoolean, checkInteger, checkString } from '../checks';
import { type NativeOnnxAttribute, type NativeOnnxGraph, native } from '../native';
import type { Module } from '../nn/module';
import { IMAGENET_MEAN, IMAGENET_STD } from '../voc/loader';

/**
 * The opsets an export may target: 13 (ONNX 1.8) up to 21 (ONNX 1.16). A runtime runs a file
 * whose opset it implements (ONNX Runtime's versioning table says which release implements
 * which); the default, 17, is what the tests run in onnxruntime-node and onnxruntime-web.
 */
export const ONNX_OPSETS = { min: 13, max: 21, default: 17 } as const;

/** The lowest IR version that holds an opset: 8 up to opset 18, 9 for 19 and 20, 10 for 21 (ONNX's versioning table). */
function irVersionOf(opset: number): number {
  return opset <= 18 ? 8 : opset <= 20 ? 9 : 10;
}

/** ONNX keeps a whole model in one protobuf message, which protobuf limits to 2 GiB. */
const PROTOBUF_LIMIT = 2 ** 31 - 1;

/** Options of {@link exportOnnx}. */
export interface OnnxExportOptions {
  /** The ONNX opset (default 17; 13 to 21). */
  opset?: number;
  /**
   * Batch, height and width as symbolic dimensions, so one file runs any batch and image size
   * (default true); false fixes them to {@link OnnxExportOptions.inputShape}.
   */
  dynamic?: boolean;
  /** [N, 3, H, W] of the input when `dynamic` is false (required then). */
  inputShape?: [number, number, number, number];
  /** The argmax over the classes inside the graph: the output is `labels`, int64 [N, H, W] (default false: `logits`). */
  labels?: boolean;
  /**
   * A second output from the auxiliary classifier of a torchvision model built with `aux`
   * (torchvision's `out` and `aux`): `aux_logits` (or `aux_labels`), the same shape as the
   * first (default false: `out` only). A model without an auxiliary classifier is refused.
   */
  aux?: boolean;
  /**
   * The input is uint8 pixels [N, 3, H, W], as `predict` takes them, normalised inside the
   * graph with the ImageNet mean and std (default false: normalised float32 [N, 3, H, W]).
   */
  preprocess?: boolean;
  /** Class names, stored in the file's metadata (`classes`, JSON). */
  classes?: string[];
  /** RGB colour per class, stored in the metadata (`palette`, JSON). */
  palette?: (readonly [number, number, number])[];
  /** Free-form facts stored as metadata properties (the source model, its weights, ...). */
  metadata?: Record<string, string>;
}

/** What {@link exportOnnx} wrote. */
export interface OnnxExportResult {
  /** The file written. */
  file: string;
  /** Its size in bytes. */
  bytes: number;
  /** The input's name (`image` for uint8 pixels, else `input`) and the output's (`logits` or `labels`). */
  input: string;
  output: string;
  /** The auxiliary output's name (`aux_logits` or `aux_labels`) when {@link OnnxExportOptions.aux} asked for it. */
  auxOutput?: string;
  /** How many nodes and weights the graph has. */
  nodes: number;
  initializers: number;
}

function attributeOf(a: NativeOnnxAttribute): onnx.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  switch (a.type) {
    case 'int':
      return { name: a.name, type: AttributeType.INT, i: a.value };
    case 'float':
      return { name: a.name, type: AttributeType.FLOAT, f: a.value };
    case 'string':
      return { name: a.name, type: AttributeType.STRING, s: Buffer.from(a.value) };
    case 'ints':
      return { name: a.name, type: AttributeType.INTS, ints: a.value };
  }
}

function valueInfo(name: string, elemType: onnx.TensorProto.DataType, dims: (number | string)[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/**
 * The output's dimensions from its shape for the probe input: as they are for a fixed input;
 * for a dynamic one the batch, the input's height and width where the output has them, other
 * sizes that follow the input (a backbone's feature map) as symbols, channels as numbers.
 * Labels (the argmax) drop dimension 1.
 */
function outputDims(shape: number[], probe: number[], dynamic: boolean, labels: boolean): (number | string)[] {
  let dims: (number | string)[] = shape;
  if (dynamic) {
    dims = shape.map((d, i) => {
      if (i === 0) return 'batch';
      if (i === 1) return d;
      if (shape.length === 4 && d === probe[i]) return i === 2 ? 'height' : 'width';
      return `output_${i}`;
    });
  }
  return labels ? dims.filter((_, i) => i !== 1) : dims;
}

/** ONNX's element types of the initializers the native graph gives. */
const DATA_TYPES: Record<NativeOnnxGraph['initializers'][number]['dtype'], onnx.TensorProto.DataType> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  int8: onnx.TensorProto.DataType.INT8,
  uint8: onnx.TensorProto.DataType.UINT8,
};

/**
 * Gives the graph's output called produced the name `name` (renaming its producer's output and
 * its readers' inputs), through an argmax over the classes when labels; an output that is the
 * model's input itself (an empty model) gets an Identity. Returns name.
 */
function nameOutput(
  nodes: onnx.INodeProto[],
  produced: string,
  modelInput: string,
  name: string,
  labels: boolean,
): string {
  const logits = labels ? `${name}.logits` : name;
  if (produced === modelInput) {
    nodes.push({ opType: 'Identity', input: [modelInput], output: [logits] });
  } else {
    for (const n of nodes) n.input = n.input?.map((i) => (i === produced ? logits : i));
    const producer = nodes.find((n) => n.output?.[0] === produced);
    if (producer) producer.output = [logits];
  }
  if (labels) {
    nodes.push({
      opType: 'ArgMax',
      input: [logits],
      output: [name],
      attribute: [
        { name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 },
        { name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 },
      ],
    });
  }
  return name;
}

function checkShape(shape: unknown): [number, number, number, number] {
  if (!Array.isArray(shape) || shape.length !== 4) {
    throw new TypeError(`inputShape: expected [N, 3, H, W], got ${JSON.stringify(shape)}`);
  }
  for (const [i, d] of shape.entries()) checkInteger(d, `inputShape[${i}]`, 1);
  if (shape[1] !== 3) throw new RangeError(`inputShape: expected 3 channels (RGB), got ${shape[1]}`);
  return shape as [number, number, number, number];
}

/**
 * Writes `model` as an ONNX file that ONNX Runtime (`onnxruntime-node`, `onnxruntime-web`)
 * and other ONNX runtimes run: its inference graph (BatchNorm with its running statistics,
 * Dropout left out, whatever mode the model is in), its weights as initializers named by
 * their state-dict keys. Every layer kind of the model must have an export; one that has none
 * is named in the error with where it sits.
 *
 * ```ts
 * await exportOnnx(createFcn(), 'fcn.onnx', { labels: true, preprocess: true });
 * ```
 */
export async function exportOnnx(
  model: Module,
  file: string,
  options: OnnxExportOptions = {},
): Promise<OnnxExportResult> {
  checkString(file, 'file');
  const opset = checkInteger(options.opset ?? ONNX_OPSETS.default, 'opset', ONNX_OPSETS.min, ONNX_OPSETS.max);
  const dynamic = checkBoolean(options.dynamic ?? true, 'dynamic');
  const labels = checkBoolean(options.labels ?? false, 'labels');
  const preprocess = checkBoolean(options.preprocess ?? false, 'preprocess');
  const aux = checkBoolean(options.aux ?? false, 'aux');
  let shape: (number | string)[] = ['batch', 3, 'height', 'width'];
  if (!dynamic) {
    if (options.inputShape === undefined) throw new TypeError('inputShape: required when dynamic is false');
    shape = checkShape(options.inputShape);
  }
  const metadata: Record<string, string> = { ...(options.metadata ?? {}) };
  for (const [key, value] of Object.entries(metadata)) checkString(value, `metadata.${key}`);
  if (options.classes !== undefined) metadata.classes = JSON.stringify(options.classes);
  if (options.palette !== undefined) metadata.palette = JSON.stringify(options.palette);
  if (preprocess) {
    metadata.mean = JSON.stringify(IMAGENET_MEAN);
    metadata.std = JSON.stringify(IMAGENET_STD);
  }

  const { FLOAT, INT64, UINT8 } = onnx.TensorProto.DataType;
  const inputName = preprocess ? 'image' : 'input';
  const prefix: onnx.INodeProto[] = [];
  const extra: onnx.ITensorProto[] = [];
  let modelInput = inputName;
  if (preprocess) {
    // (pixels / 255 - mean) / std, as predict normalises uint8 pixels.
    const constant = (name: string, values: readonly number[]) =>
      extra.push({ name, dataType: FLOAT, dims: [1, 3, 1, 1], rawData: Buffer.from(new Float32Array(values).buffer) });
    constant(
      'preprocess.mean',
      IMAGENET_MEAN.map((m) => m * 255),
    );
    constant(
      'preprocess.std',
      IMAGENET_STD.map((s) => s * 255),
    );
    prefix.push(
      {
        opType: 'Cast',
        input: [inputName],
        output: ['preprocess.float'],
        attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: FLOAT }],
      },
      { opType: 'Sub', input: ['preprocess.float', 'preprocess.mean'], output: ['preprocess.centred'] },
      { opType: 'Div', input: ['preprocess.centred', 'preprocess.std'], output: ['preprocess.input'] },
    );
    modelInput = 'preprocess.input';
  }
  // A run on zeros tells the output's rank and which of its sizes follow the input's.
  const probe = dynamic ? [1, 3, 64, 64] : (shape as number[]);
  const graph = await native.onnxGraph(model.native, modelInput, opset, probe, aux);
  const nodes: onnx.INodeProto[] = [
    ...prefix,
    ...graph.nodes.map((n) => ({
      opType: n.op,
      name: n.output,
      input: n.inputs,
      output: [n.output],
      attribute: n.attributes.map(attributeOf),
    })),
  ];
  const outputName = nameOutput(nodes, graph.output, modelInput, labels ? 'labels' : 'logits', labels);
  const auxName = graph.aux
    ? nameOutput(nodes, graph.aux, modelInput, labels ? 'aux_labels' : 'aux_logits', labels)
    : '';
  const initializers: onnx.ITensorProto[] = [
    ...extra,
    ...graph.initializers.map((t) => ({
      name: t.name,
      dataType: DATA_TYPES[t.dtype],
      dims: t.dims,
      rawData: t.data,
    })),
  ];
  const weightBytes = graph.initializers.reduce((sum, t) => sum + t.data.length, 0);
  if (weightBytes > PROTOBUF_LIMIT) {
    throw new RangeError(
      `the model's weights take ${weightBytes} bytes, more than the 2 GiB a single ONNX file holds; ` +
        'ONNX external data (weights in files beside it) is not supported by this export',
    );
  }
  const message = onnx.ModelProto.encode({
    irVersion: irVersionOf(opset),
    producerName: 'fcn-torch',
    producerVersion: packageVersion(),
    opsetImport: [{ domain: '', version: opset }],
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    graph: {
      name: model.kind,
      node: nodes,
      initializer: initializers,
      input: [valueInfo(inputName, preprocess ? UINT8 : FLOAT, shape)],
      output: [outputName, ...(auxName ? [auxName] : [])].map((name) =>
        valueInfo(name, labels ? INT64 : FLOAT, outputDims(graph.outputShape, probe, dynamic, labels)),
      ),
    },
  }).finish();
  const target = path.resolve(file);
  const temporary = `${target}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    await fs.promises.writeFile(temporary, message);
    await fs.promises.rename(temporary, target);
  } catch (e) {
    await fs.promises.rm(temporary, { force: true });
    throw new Error(`cannot write '${file}': ${(e as Error).message}`);
  }
  return {
    file: target,
    bytes: message.length,
    input: inputName,
    output: outputName,
    ...(auxName ? { auxOutput: auxName } : {}),
    nodes: nodes.length,
    initializers: initializers.length,
  };
}

function packageVersion(): string {
  const manifest = path.resolve(__dirname, '..', '..', '..', 'package.json');
  return (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { version: string }).version;
}
