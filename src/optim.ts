/**
 * Optimizers over libtorch's `torch::optim`.
 */
import { checkNumber, checkTensor } from './checks';
import { type NativeOptimizer, native } from './native';
import { Tensor } from './tensor';

/** Options of {@link SGD}, as PyTorch's keyword arguments. */
export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  /** L2 penalty added to the gradient (the chapter uses 1e-3). */
  weightDecay?: number;
  nesterov?: boolean;
}

const nonNegative = (value: number, name: string) => checkNumber(value, name, 0);

/** Stochastic gradient descent (PyTorch's `torch.optim.SGD`). */
export class SGD {
  /** @internal */
  readonly native: NativeOptimizer;

  constructor(params: Iterable<Tensor>, options: SGDOptions) {
    const list = [...params].map((p, i) => checkTensor(p, `params[${i}]`));
    if (list.length === 0) throw new RangeError('SGD: params is empty');
    const momentum = nonNegative(options.momentum ?? 0, 'momentum');
    const dampening = nonNegative(options.dampening ?? 0, 'dampening');
    const nesterov = options.nesterov ?? false;
    if (nesterov && (momentum <= 0 || dampening !== 0)) {
      throw new RangeError('SGD: nesterov needs momentum > 0 and dampening 0');
    }
    this.native = new native.NativeSGD(list, {
      lr: nonNegative(options.lr, 'lr'),
      momentum,
      dampening,
      weightDecay: nonNegative(options.weightDecay ?? 0, 'weightDecay'),
      nesterov,
    });
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
   * The per-parameter state (momentum buffers) as PyTorch's `state_dict()['state']` holds
   * it, flattened: `state.<index>.momentum_buffer`, index in parameter order.
   */
  stateDict(): Map<string, Tensor> {
    return new Map(this.native.stateDict().map(([name, t]) => [name, new Tensor(t)]));
  }
  /** Restores what {@link SGD.stateDict} gave (names and shapes are checked first). */
  loadStateDict(state: Map<string, Tensor>): void {
    this.native.loadStateDict([...state.entries()].map(([name, t]) => [name, checkTensor(t, `state '${name}'`)]));
  }
  /** Sets the learning rate of every parameter group. */
  setLr(lr: number): void {
    this.native.setLr(nonNegative(lr, 'lr'));
  }
}
