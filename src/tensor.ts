/**
 * The Tensor class: a typed face over a libtorch tensor, with PyTorch's method names.
 */
import { inspect } from 'node:util';
import { type NativeTensor, native } from './native';
import { tidy, track } from './tidy';

/** Element types, spelled as PyTorch's `torch.float32` and friends. */
export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool';

/** A compute device: `'cpu'`, `'cuda'` (the current GPU) or `'cuda:N'`. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

/** The TypedArray that holds each dtype's elements (`bool` as 0/1 bytes). */
export interface TypedArrayOf {
  float32: Float32Array;
  float64: Float64Array;
  int64: BigInt64Array;
  int32: Int32Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

/** Any of the TypedArrays that hold tensor elements. */
export type TypedArray = TypedArrayOf[DType];

const ops = native.ops;

/**
 * A multi-dimensional array held by libtorch, on the CPU or a GPU.
 *
 * Memory is freed when the tensor is garbage-collected, at once by {@link Tensor.dispose},
 * or by the {@link tidy} scope it was made in. Views (reshape, narrow, permute, ...) share
 * memory with their source, as in PyTorch.
 */
export class Tensor<D extends DType = DType> {
  /** @internal */
  readonly native: NativeTensor;

  /** @internal Wraps a native handle; user code makes tensors with `torch.*`. */
  constructor(handle: NativeTensor) {
    this.native = handle;
    track(this);
  }

  /** Sizes of each dimension. */
  get shape(): number[] {
    return this.native.shape;
  }
  /** Number of dimensions. */
  get ndim(): number {
    return this.native.shape.length;
  }
  /** Total number of elements. */
  get numel(): number {
    return this.native.shape.reduce((a, b) => a * b, 1);
  }
  /** Element type. */
  get dtype(): D {
    return this.native.dtype as D;
  }
  /** Where the data lives: `'cpu'` or `'cuda:N'`. */
  get device(): Device {
    return this.native.device as Device;
  }
  /** Whether autograd records operations on this tensor. Settable on leaves. */
  get requiresGrad(): boolean {
    return this.native.requiresGrad;
  }
  set requiresGrad(value: boolean) {
    this.native.requiresGrad = value;
  }
  /** The gradient accumulated by {@link Tensor.backward}, or null. */
  get grad(): Tensor | null {
    const g = this.native.grad;
    return g === null ? null : new Tensor(g);
  }
  /** True once {@link Tensor.dispose} was called. */
  get isDisposed(): boolean {
    return this.native.disposed;
  }

  /** A copy of the elements in row-major order (BigInt64Array for int64, Uint8Array for bool). */
  toTypedArray(): TypedArrayOf[D] {
    return this.native.toTypedArray() as TypedArrayOf[D];
  }
  /** The elements as nested arrays of numbers (int64 as numbers), like `tensor.tolist()`. */
  toArray(): unknown[] | number | boolean {
    const flat = Array.from(this.toTypedArray() as ArrayLike<number | bigint>, (v) =>
      this.dtype === 'bool' ? v !== 0 : Number(v),
    );
    const build = (dim: number, offset: number): unknown[] => {
      const size = this.shape[dim];
      const stride = this.shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: size }, (_, i) =>
        dim === this.ndim - 1 ? flat[offset + i] : build(dim + 1, offset + i * stride),
      );
    };
    return this.ndim === 0 ? flat[0] : build(0, 0);
  }
  /** The value of a one-element tensor, as a number (a bool tensor's is 1 or 0; see {@link Tensor.itemBool}). */
  item(): number {
    return Number(this.native.item());
  }
  /** The value of a one-element tensor, as a boolean (non-zero is true). */
  itemBool(): boolean {
    return this.item() !== 0;
  }
  /**
   * Shape, dtype and device, then the values, as PyTorch prints them: all of them when there
   * are few, else the first and last three along each dimension around `...`.
   */
  toString(): string {
    const header = `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device}${
      this.requiresGrad ? ', requiresGrad=true' : ''
    })`;
    return `${header}\n${formatValues(this)}`;
  }
  /** What console.log and util.inspect show: {@link Tensor.toString}. */
  [inspect.custom](): string {
    return this.toString();
  }
  /** Frees the memory now (unless other tensors or modules share it); later use throws. */
  dispose(): void {
    this.native.dispose();
  }
  /** {@link Tensor.dispose}, for `using t = ...` (explicit resource management). */
  [Symbol.dispose](): void {
    this.dispose();
  }
  /** Accumulates gradients of this tensor (a scalar, or with `gradient`) into the leaves. */
  backward(gradient?: Tensor): void {
    this.native.backward(gradient?.native);
  }

  // --- shape ---
  /** Same data in another shape (one size may be -1). */
  reshape(shape: number[]): Tensor<D> {
    return new Tensor<D>(ops.reshape(this.native, shape));
  }
  /** Alias of {@link Tensor.reshape}. */
  view(shape: number[]): Tensor<D> {
    return this.reshape(shape);
  }
  /** Dimensions reordered. */
  permute(dims: number[]): Tensor<D> {
    return new Tensor<D>(ops.permute(this.native, dims));
  }
  /** Two dimensions swapped. */
  transpose(dim0: number, dim1: number): Tensor<D> {
    return new Tensor<D>(ops.transpose(this.native, dim0, dim1));
  }
  /** A size-1 dimension inserted at dim. */
  unsqueeze(dim: number): Tensor<D> {
    return new Tensor<D>(ops.unsqueeze(this.native, dim));
  }
  /** Size-1 dimensions removed (all, or only dim). */
  squeeze(dim?: number): Tensor<D> {
    return new Tensor<D>(ops.squeeze(this.native, dim));
  }
  /** Dimensions startDim..endDim merged into one. */
  flatten(startDim = 0, endDim = -1): Tensor<D> {
    return new Tensor<D>(ops.flatten(this.native, startDim, endDim));
  }
  /** `length` elements of dim from `start` (a view). */
  narrow(dim: number, start: number, length: number): Tensor<D> {
    return new Tensor<D>(ops.narrow(this.native, dim, start, length));
  }
  /** PyTorch's `t[..., start:end:step, ...]` along dim (a view). */
  slice(dim: number, start?: number, end?: number, step = 1): Tensor<D> {
    return new Tensor<D>(ops.slice(this.native, dim, start, end, step));
  }
  /**
   * Advanced indexing, PyTorch's `t[i0, i1, ...]`: each entry an index tensor (int64 or
   * bool) or null for `:`. The chapter's `colormap[X, :]` is `colormap.index([X])`.
   */
  index(indices: (Tensor | null)[]): Tensor<D> {
    return new Tensor<D>(
      ops.index(
        this.native,
        indices.map((i) => (i === null ? null : i.native)),
      ),
    );
  }

  // --- reductions ---
  /** Sum of all elements, or along dim. */
  sum(dim?: number, keepdim = false): Tensor {
    return new Tensor(ops.sum(this.native, dim, keepdim));
  }
  /** Mean of all elements, or along dim. */
  mean(dim?: number, keepdim = false): Tensor {
    return new Tensor(ops.mean(this.native, dim, keepdim));
  }
  /** Index of the largest element (flattened), or along dim. */
  argmax(dim?: number, keepdim = false): Tensor<'int64'> {
    return new Tensor<'int64'>(ops.argmax(this.native, dim, keepdim));
  }
  /** Largest element, or largest values along dim. */
  max(dim?: number, keepdim = false): Tensor {
    return new Tensor(ops.max(this.native, dim, keepdim));
  }

  // --- elementwise (broadcasting, with PyTorch's type promotion) ---
  /** this + other */
  add(other: Tensor | number): Tensor {
    return new Tensor(ops.add(this.native, operand(other)));
  }
  /** this - other */
  sub(other: Tensor | number): Tensor {
    return new Tensor(ops.sub(this.native, operand(other)));
  }
  /** this * other */
  mul(other: Tensor | number): Tensor {
    return new Tensor(ops.mul(this.native, operand(other)));
  }
  /** this / other (true division) */
  div(other: Tensor | number): Tensor {
    return new Tensor(ops.div(this.native, operand(other)));
  }
  /** this ** other */
  pow(other: Tensor | number): Tensor {
    return new Tensor(ops.pow(this.native, operand(other)));
  }
  /** Elementwise ==, as a bool tensor. */
  eq(other: Tensor | number): Tensor<'bool'> {
    return new Tensor<'bool'>(ops.eq(this.native, operand(other)));
  }
  /** Elementwise !=, as a bool tensor. */
  ne(other: Tensor | number): Tensor<'bool'> {
    return new Tensor<'bool'>(ops.ne(this.native, operand(other)));
  }
  /** Elementwise <, as a bool tensor. */
  lt(other: Tensor | number): Tensor<'bool'> {
    return new Tensor<'bool'>(ops.lt(this.native, operand(other)));
  }
  /** Elementwise >, as a bool tensor. */
  gt(other: Tensor | number): Tensor<'bool'> {
    return new Tensor<'bool'>(ops.gt(this.native, operand(other)));
  }
  /** Elementwise >=, as a bool tensor. */
  ge(other: Tensor | number): Tensor<'bool'> {
    return new Tensor<'bool'>(ops.ge(this.native, operand(other)));
  }
  /** Elementwise <=, as a bool tensor. */
  le(other: Tensor | number): Tensor<'bool'> {
    return new Tensor<'bool'>(ops.le(this.native, operand(other)));
  }
  /** Elementwise logical or of two tensors (non-zero is true). */
  logicalOr(other: Tensor): Tensor<'bool'> {
    return new Tensor<'bool'>(ops.logicalOr(this.native, other.native));
  }
  /** A copy with value wherever mask (bool, broadcastable) is true. */
  maskedFill(mask: Tensor, value: number): Tensor<D> {
    return new Tensor<D>(ops.maskedFill(this.native, mask.native, value));
  }
  /** Matrix product. */
  matmul(other: Tensor): Tensor {
    return new Tensor(ops.matmul(this.native, other.native));
  }
  /** -this */
  neg(): Tensor<D> {
    return new Tensor<D>(ops.neg(this.native));
  }
  /** |this| */
  abs(): Tensor<D> {
    return new Tensor<D>(ops.abs(this.native));
  }
  /** e^this */
  exp(): Tensor {
    return new Tensor(ops.exp(this.native));
  }
  /** Natural logarithm. */
  log(): Tensor {
    return new Tensor(ops.log(this.native));
  }
  /** Square root. */
  sqrt(): Tensor {
    return new Tensor(ops.sqrt(this.native));
  }
  /** max(this, 0) */
  relu(): Tensor<D> {
    return new Tensor<D>(ops.relu(this.native));
  }
  /** Softmax along dim. */
  softmax(dim: number): Tensor {
    return new Tensor(ops.softmax(this.native, dim, false));
  }
  /** Log-softmax along dim. */
  logSoftmax(dim: number): Tensor {
    return new Tensor(ops.softmax(this.native, dim, true));
  }

  // --- copies and conversions ---
  /** A copy with its own memory (still recorded by autograd). */
  clone(): Tensor<D> {
    return new Tensor<D>(ops.clone(this.native));
  }
  /** The same data, cut from the autograd graph. */
  detach(): Tensor<D> {
    return new Tensor<D>(ops.detach(this.native));
  }
  /** Row-major memory layout (this tensor if it already is). */
  contiguous(): Tensor<D> {
    return new Tensor<D>(ops.contiguous(this.native));
  }
  /** Converted to a dtype and/or moved to a device (`'cuda'` on a CPU build throws). */
  to<T extends DType>(dtype: T): Tensor<T>;
  to(device: Device): Tensor<D>;
  to<T extends DType = D>(options: { dtype?: T; device?: Device }): Tensor<T>;
  to(target: DType | Device | { dtype?: DType; device?: Device }): Tensor {
    const options = typeof target === 'string' ? (isDType(target) ? { dtype: target } : { device: target }) : target;
    return new Tensor(ops.to(this.native, options));
  }
  /** Converted to float32. */
  float(): Tensor<'float32'> {
    return this.to('float32');
  }
  /** Converted to int64. */
  long(): Tensor<'int64'> {
    return this.to('int64');
  }
  /** Moved to the CPU. */
  cpu(): Tensor<D> {
    return this.to('cpu');
  }
  /**
   * Copies src into this tensor in place (broadcasting, converting dtype and device).
   * Into a parameter it is not recorded by autograd, like PyTorch's `weight.data.copy_`.
   */
  copy_(src: Tensor): this {
    ops.copy_(this.native, src.native);
    return this;
  }
}

/** The values of t as PyTorch's repr shows them: nested brackets, at most 3 + ... + 3 per dimension. */
function formatValues(t: Tensor): string {
  const edge = 3;
  const number = (v: number | bigint) =>
    t.dtype === 'bool'
      ? String(v !== 0 && v !== 0n)
      : t.dtype === 'float32' || t.dtype === 'float64'
        ? formatFloat(Number(v))
        : String(v);
  const format = (x: Tensor, indent: string): string => {
    if (x.ndim === 0) return number(x.cpu().toTypedArray()[0]);
    const size = x.shape[0];
    const rows =
      size > 2 * edge
        ? [...Array.from({ length: edge }, (_, i) => i), -1, ...Array.from({ length: edge }, (_, i) => size - edge + i)]
        : Array.from({ length: size }, (_, i) => i);
    const parts = rows.map((i) => (i < 0 ? '...' : format(x.narrow(0, i, 1).squeeze(0), `${indent} `)));
    return x.ndim === 1 ? `[${parts.join(', ')}]` : `[${parts.join(`,\n${indent} `)}]`;
  };
  return tidy(() => format(t.detach(), ''));
}

function formatFloat(v: number): string {
  if (Number.isInteger(v) && Math.abs(v) < 1e8) return `${v}.`;
  return Math.abs(v) >= 1e-4 && Math.abs(v) < 1e8 ? v.toFixed(4) : v.toExponential(4);
}

const dtypes: readonly string[] = ['float32', 'float64', 'int64', 'int32', 'uint8', 'bool'];

/** True for the dtype names this package knows. */
export function isDType(value: string): value is DType {
  return dtypes.includes(value);
}

function operand(other: Tensor | number) {
  return typeof other === 'number' ? other : other.native;
}
