/**
 * The Module base class: a typed handle over a libtorch module. Modules returned by
 * `children()` or `get()` share parameters with their parent, as in PyTorch.
 */
import { checkTensor } from '../checks';
import type { NativeModule, NativeTensor } from '../native';
import { type Device, type DType, Tensor } from '../tensor';

/** A state dict: parameter and buffer names mapped to tensors, in PyTorch's order. */
export type StateDict = Map<string, Tensor>;

/** What {@link Module.loadStateDict} did not match (only reported when `strict` is false). */
export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** The class that wraps each native module kind (models/registry.h on the native side). */
const classes = new Map<string, { prototype: Module }>();

/**
 * @internal Registers the class that wraps native modules of a kind and returns the kind: each
 * module class does it once, the kind's one spelling in TypeScript. A class built from options
 * keeps it as `static readonly kind = registerModuleClass('Conv2d', this);` and passes
 * `Conv2d.kind` to `native.createModule`; the others register in a static block.
 */
export function registerModuleClass<K extends string>(kind: K, cls: { prototype: Module }): K {
  const taken = classes.get(kind);
  if (taken !== undefined && taken !== cls) throw new Error(`internal error: two classes for module kind '${kind}'`);
  classes.set(kind, cls);
  return kind;
}

/** @internal The kinds that have a class, for the test that holds them against the native registry. */
export function moduleClassKinds(): string[] {
  return [...classes.keys()].sort();
}

/**
 * @internal A typed handle for a native module, of the class registered for its kind. A kind
 * without a class is an error in this package (the kind-coverage test checks every kind), not a
 * silent base Module.
 */
export function wrapModule(handle: NativeModule): Module {
  const cls = classes.get(handle.kind);
  if (cls === undefined) {
    throw new Error(`internal error: no class for the native module kind '${handle.kind}' (src/ registers none)`);
  }
  const m = Object.create(cls.prototype) as { native: NativeModule };
  m.native = handle;
  return m as Module;
}

function toMap(pairs: [string, NativeTensor][]): Map<string, Tensor> {
  return new Map(pairs.map(([name, t]) => [name, new Tensor(t)]));
}

/** Base class of every layer and model (PyTorch's `torch.nn.Module`). */
export class Module {
  /** @internal */
  native: NativeModule;

  /** @internal */
  constructor(handle: NativeModule) {
    this.native = handle;
  }

  /**
   * Lets go of the module now rather than when it is garbage-collected: its parameters and
   * buffers are freed once nothing else holds them (a parent module, an optimizer, a forward
   * still running, tensors from its parameters() or stateDict()). Later use of this handle
   * throws; other handles to the same module (its parent's children()) still work.
   */
  dispose(): void {
    this.native.dispose();
  }
  /** {@link Module.dispose}, for `using net = ...` (explicit resource management). */
  [Symbol.dispose](): void {
    this.dispose();
  }
  /** True once {@link Module.dispose} was called on this handle. */
  get isDisposed(): boolean {
    return this.native.disposed;
  }

  /** The layer kind: 'Conv2d', 'Sequential', 'ResNet', ... */
  get kind(): string {
    return this.native.kind;
  }

  /** Runs the module on input, on the calling thread (blocks the event loop while it runs). */
  forward(input: Tensor): Tensor {
    return new Tensor(this.native.forward(checkTensor(input)));
  }

  /** Runs the module on input on the native worker thread; the event loop stays free. */
  async forwardAsync(input: Tensor): Promise<Tensor> {
    return new Tensor(await this.native.forwardAsync(checkTensor(input)));
  }

  /** Direct children in registration order, with their names. */
  namedChildren(): [string, Module][] {
    return this.native.namedChildren().map(([name, m]) => [name, wrapModule(m)]);
  }
  /** Direct children in registration order. */
  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }
  /** Parameters with dotted names (recursively unless recurse is false). */
  namedParameters(recurse = true): Map<string, Tensor> {
    return toMap(this.native.namedParameters(recurse));
  }
  /** Parameters (recursively unless recurse is false). */
  parameters(recurse = true): Tensor[] {
    return [...this.namedParameters(recurse).values()];
  }
  /** Buffers (BatchNorm running statistics) with dotted names. */
  namedBuffers(recurse = true): Map<string, Tensor> {
    return toMap(this.native.namedBuffers(recurse));
  }
  /** Parameters and buffers by name, in PyTorch's `state_dict()` order; tensors share memory. */
  stateDict(): StateDict {
    return toMap(this.native.stateDict());
  }
  /**
   * Copies tensors from dict into this module's parameters and buffers. Shape mismatches are
   * always an error; missing or unexpected keys are an error when strict (the default).
   * On error nothing is copied.
   */
  loadStateDict(dict: StateDict | Record<string, Tensor>, options: { strict?: boolean } = {}): LoadResult {
    const entries = dict instanceof Map ? [...dict.entries()] : Object.entries(dict);
    return this.native.loadStateDict(
      entries.map(([k, t]) => [k, checkTensor(t, `state dict entry '${k}'`)]),
      options.strict ?? true,
    );
  }
  /** Training mode (BatchNorm uses batch statistics and updates its running ones). */
  train(mode = true): this {
    this.native.train(mode);
    return this;
  }
  /** Evaluation mode (BatchNorm uses its running statistics). */
  eval(): this {
    return this.train(false);
  }
  /** True in training mode. */
  get training(): boolean {
    return this.native.isTraining();
  }
  /** Moves parameters and buffers to a device, or converts them to a floating dtype. */
  to(target: Device | Extract<DType, 'float32' | 'float64'>): this {
    this.native.to(target);
    return this;
  }
  /** Clears the gradients of all parameters. */
  zeroGrad(): void {
    this.native.zeroGrad();
  }
  /** A direct child by name (or by index, in registration order). */
  get(key: string | number): Module {
    const children = this.namedChildren();
    const found = typeof key === 'number' ? children.at(key) : children.find(([name]) => name === key);
    if (!found) {
      throw new RangeError(
        `${this.kind} has no child ${typeof key === 'number' ? `at index ${key}` : `'${key}'`}; ` +
          `children: ${children.map(([n]) => n).join(', ') || 'none'}`,
      );
    }
    return found[1];
  }
  /**
   * The module's own `weight` parameter (convolutions, BatchNorm, Linear). It shares memory
   * with the module: `weight.copy_(...)` sets it. Throws for modules without one.
   */
  get weight(): Tensor {
    const w = this.namedParameters(false).get('weight');
    if (!w) throw new Error(`${this.kind} has no weight parameter`);
    return w;
  }
  /** The module's own `bias` parameter, or null when it has none (e.g. `bias: false`). */
  get bias(): Tensor | null {
    return this.namedParameters(false).get('bias') ?? null;
  }
}
