/**
 * Optimizers over libtorch's `torch::optim` (SGD, AdamW) with PyTorch's parameter groups, and
 * the learning-rate schedulers of `torch.optim.lr_scheduler` (./lr_scheduler).
 */
import { checkBoolean, checkNumber, checkTensor, describe } from './checks';
import { type NativeOptimizer, type NativeTensor, native } from './native';
import { Tensor } from './tensor';

export * from './lr_scheduler';

/** Options of {@link SGD}, as PyTorch's keyword arguments. */
export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  /** L2 penalty added to the gradient (the chapter uses 1e-3). */
  weightDecay?: number;
  nesterov?: boolean;
}

/** Options of {@link AdamW}, as PyTorch's keyword arguments. */
export interface AdamWOptions {
  /** Default 1e-3. */
  lr?: number;
  /** Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay (default 1e-2): each step multiplies the weights by 1 - lr * weightDecay. */
  weightDecay?: number;
  /** The AMSGrad variant (default false). */
  amsgrad?: boolean;
}

/**
 * A group of parameters with options of its own (PyTorch's `param_groups`): options left out
 * take the optimizer's. torchvision's segmentation recipe gives the aux classifier 10 x lr.
 */
export type ParamGroup<Options> = { params: Iterable<Tensor> } & Partial<Options>;

const nonNegative = (value: number, name: string) => checkNumber(value, name, 0);

/** params as groups: one group of tensors, or the groups given. */
function groupsOf<O>(name: string, params: Iterable<Tensor> | ParamGroup<O>[]): ParamGroup<O>[] {
  if (params === null || typeof params !== 'object' || !(Symbol.iterator in params)) {
    throw new TypeError(
      `${name}: params must be an iterable of Tensors or of parameter groups, got ${describe(params)}`,
    );
  }
  const list = [...(params as Iterable<Tensor | ParamGroup<O>>)];
  if (list.length === 0) throw new RangeError(`${name}: params is empty`);
  if (list.every((p) => p instanceof Tensor)) return [{ params: list as Tensor[] } as unknown as ParamGroup<O>];
  return list.map((g, i) => {
    if (g instanceof Tensor || typeof g !== 'object' || g === null || !('params' in g)) {
      throw new TypeError(`${name}: params[${i}]: expected a Tensor or a group { params, ... }, got ${describe(g)}`);
    }
    return g;
  });
}

/** Base class of the optimizers: steps, learning rates by group, and state for checkpoints. */
export abstract class Optimizer {
  /** @internal */
  readonly native: NativeOptimizer;
  /** The learning rate each group was made with (the schedulers' base, PyTorch's `initial_lr`). */
  readonly initialLrs: readonly number[];

  /** @internal */
  protected constructor(
    name: string,
    kind: 'sgd' | 'adamw',
    groups: { params: Iterable<Tensor>; options: Record<string, number | boolean> }[],
  ) {
    const nativeGroups = groups.map((g, i) => {
      const where = groups.length === 1 ? 'params' : `params[${i}].params`;
      const list: NativeTensor[] = [...g.params].map((p, j) => {
        const handle = checkTensor(p, `${where}[${j}]`);
        if (!handle.requiresGrad) {
          throw new Error(`${where}[${j}] does not require grad; an optimizer updates only trainable tensors`);
        }
        return handle;
      });
      if (list.length === 0) throw new RangeError(`${name}: ${where} is empty`);
      return { params: list, options: g.options };
    });
    this.native = new native.NativeOptimizer(kind, nativeGroups);
    this.initialLrs = Object.freeze(this.native.getLrs());
  }

  /** Updates every parameter from its gradient. */
  step(): void {
    this.native.step();
  }
  /** Clears the gradients (sets them to none, as PyTorch does by default). */
  zeroGrad(): void {
    this.native.zeroGrad();
  }
  /**
   * The per-parameter state as PyTorch's `state_dict()['state']` holds it, flattened:
   * `state.<index>.<field>`, index in parameter order over the groups (SGD: momentum_buffer;
   * AdamW: step, exp_avg, exp_avg_sq, max_exp_avg_sq).
   */
  stateDict(): Map<string, Tensor> {
    return new Map(this.native.stateDict().map(([name, t]) => [name, new Tensor(t)]));
  }
  /** Restores what {@link Optimizer.stateDict} gave (names and shapes are checked first). */
  loadStateDict(state: Map<string, Tensor>): void {
    this.native.loadStateDict([...state.entries()].map(([name, t]) => [name, checkTensor(t, `state '${name}'`)]));
  }
  /** Sets the learning rate of every parameter group. */
  setLr(lr: number): void {
    const value = nonNegative(lr, 'lr');
    this.native.setLrs(this.lrs.map(() => value));
  }
  /** The learning rate of each parameter group, in order (PyTorch's `[g['lr'] for g in param_groups]`). */
  get lrs(): number[] {
    return this.native.getLrs();
  }
  /** Sets the learning rate of each parameter group (what a scheduler does). */
  setLrs(lrs: readonly number[]): void {
    if (!Array.isArray(lrs) || lrs.length !== this.initialLrs.length) {
      throw new RangeError(
        `setLrs: expected ${this.initialLrs.length} learning rates (one per group), got ${describe(lrs)}`,
      );
    }
    this.native.setLrs(lrs.map((lr, i) => nonNegative(lr, `lrs[${i}]`)));
  }
}

/** Stochastic gradient descent (PyTorch's `torch.optim.SGD`), over tensors or parameter groups. */
export class SGD extends Optimizer {
  constructor(params: Iterable<Tensor> | ParamGroup<SGDOptions>[], options: SGDOptions) {
    const given = groupsOf<SGDOptions>('SGD', params);
    const groups = given.map((g, i) => {
      const at = (key: string) => (given.length > 1 ? `params[${i}].${key}` : key);
      const o = { ...options, ...g };
      const momentum = nonNegative(o.momentum ?? 0, at('momentum'));
      const dampening = nonNegative(o.dampening ?? 0, at('dampening'));
      const nesterov = checkBoolean(o.nesterov ?? false, at('nesterov'));
      if (nesterov && (momentum <= 0 || dampening !== 0)) {
        throw new RangeError('SGD: nesterov needs momentum > 0 and dampening 0');
      }
      const lr = nonNegative(o.lr, at('lr'));
      const weightDecay = nonNegative(o.weightDecay ?? 0, at('weightDecay'));
      return { params: g.params, options: { lr, momentum, dampening, weightDecay, nesterov } };
    });
    super('SGD', 'sgd', groups);
  }
}

/**
 * Adam with decoupled weight decay (PyTorch's `torch.optim.AdamW`, the single-tensor
 * implementation), over tensors or parameter groups.
 */
export class AdamW extends Optimizer {
  constructor(params: Iterable<Tensor> | ParamGroup<AdamWOptions>[], options: AdamWOptions = {}) {
    const given = groupsOf<AdamWOptions>('AdamW', params);
    const groups = given.map((g, i) => {
      const at = (key: string) => (given.length > 1 ? `params[${i}].${key}` : key);
      const o = { ...options, ...g };
      const betas = o.betas ?? [0.9, 0.999];
      if (!Array.isArray(betas) || betas.length !== 2) {
        throw new RangeError(`AdamW: ${at('betas')}: expected [beta1, beta2], got ${describe(betas)}`);
      }
      return {
        params: g.params,
        options: {
          lr: nonNegative(o.lr ?? 1e-3, at('lr')),
          beta1: checkNumber(betas[0], at('betas[0]'), 0, 1),
          beta2: checkNumber(betas[1], at('betas[1]'), 0, 1),
          eps: nonNegative(o.eps ?? 1e-8, at('eps')),
          weightDecay: nonNegative(o.weightDecay ?? 1e-2, at('weightDecay')),
          amsgrad: checkBoolean(o.amsgrad ?? false, at('amsgrad')),
        },
      };
    });
    super('AdamW', 'adamw', groups);
  }
}
