/**
 * Learning-rate schedulers with the names and semantics of PyTorch's
 * `torch.optim.lr_scheduler`: made after the optimizer, they set each group's learning rate
 * for step 0 at once, and `step()` (after each `optimizer.step()`) moves to the next. The
 * rates are PyTorch's closed forms of its schedules (equal to its recursive updates to
 * within 1e-15), from each group's initial learning rate.
 */
import { checkInteger, checkNumber, describe } from './checks';

/** What a scheduler drives: an optimizer's per-group learning rates (optim.SGD, optim.AdamW). */
export interface SchedulableOptimizer {
  /** The learning rate each group was made with: the schedule's base (PyTorch's `initial_lr`). */
  readonly initialLrs: readonly number[];
  setLrs(lrs: readonly number[]): void;
}

/** A scheduler's state in a checkpoint: how many times it has stepped. */
export interface SchedulerState {
  lastEpoch: number;
}

/** Base class of the schedulers (PyTorch's `LRScheduler`). */
export abstract class LRScheduler {
  /** Steps taken (PyTorch's `last_epoch`): 0 right after construction. */
  lastEpoch = 0;
  /** Each group's base learning rate (PyTorch's `base_lrs`). */
  readonly baseLrs: readonly number[];
  readonly optimizer: SchedulableOptimizer;

  protected constructor(optimizer: SchedulableOptimizer) {
    if (typeof optimizer !== 'object' || optimizer === null || !Array.isArray(optimizer.initialLrs)) {
      throw new TypeError(`scheduler: expected an optimizer (optim.SGD, optim.AdamW), got ${describe(optimizer)}`);
    }
    this.optimizer = optimizer;
    this.baseLrs = optimizer.initialLrs;
  }

  /** The learning rate of a group with base rate base after t steps. */
  abstract lrAt(base: number, t: number): number;

  /** Sets the optimizer's rates for the current step (the constructors call it). */
  protected apply(): void {
    this.optimizer.setLrs(this.getLastLr());
  }

  /** Moves to the next step: call it after each `optimizer.step()`. */
  step(): void {
    this.lastEpoch += 1;
    this.apply();
  }

  /** The rates of the current step, per group (PyTorch's `get_last_lr()`). */
  getLastLr(): number[] {
    return this.baseLrs.map((base) => this.lrAt(base, this.lastEpoch));
  }

  /** The state to keep in a checkpoint. */
  stateDict(): SchedulerState {
    return { lastEpoch: this.lastEpoch };
  }

  /** Continues from a saved state: the optimizer gets that step's rates. */
  loadStateDict(state: SchedulerState): void {
    this.lastEpoch = checkInteger(state?.lastEpoch, 'scheduler state: lastEpoch', 0);
    this.apply();
  }
}

/** `PolynomialLR`: base * (1 - min(t, totalIters) / totalIters) ^ power. */
export class PolynomialLR extends LRScheduler {
  readonly totalIters: number;
  readonly power: number;

  constructor(optimizer: SchedulableOptimizer, options: { totalIters?: number; power?: number } = {}) {
    super(optimizer);
    this.totalIters = checkInteger(options.totalIters ?? 5, 'PolynomialLR: totalIters', 1);
    this.power = checkNumber(options.power ?? 1, 'PolynomialLR: power', 0);
    this.apply();
  }

  lrAt(base: number, t: number): number {
    return base * (1 - Math.min(t, this.totalIters) / this.totalIters) ** this.power;
  }
}

/** `StepLR`: base * gamma ^ floor(t / stepSize). */
export class StepLR extends LRScheduler {
  readonly stepSize: number;
  readonly gamma: number;

  constructor(optimizer: SchedulableOptimizer, options: { stepSize: number; gamma?: number }) {
    super(optimizer);
    this.stepSize = checkInteger(options?.stepSize, 'StepLR: stepSize', 1);
    this.gamma = checkNumber(options.gamma ?? 0.1, 'StepLR: gamma', 0);
    this.apply();
  }

  lrAt(base: number, t: number): number {
    return base * this.gamma ** Math.floor(t / this.stepSize);
  }
}

/** `CosineAnnealingLR`: etaMin + (base - etaMin) (1 + cos(pi t / tMax)) / 2. */
export class CosineAnnealingLR extends LRScheduler {
  readonly tMax: number;
  readonly etaMin: number;

  constructor(optimizer: SchedulableOptimizer, options: { tMax: number; etaMin?: number }) {
    super(optimizer);
    this.tMax = checkInteger(options?.tMax, 'CosineAnnealingLR: tMax', 1);
    this.etaMin = checkNumber(options.etaMin ?? 0, 'CosineAnnealingLR: etaMin', 0);
    this.apply();
  }

  lrAt(base: number, t: number): number {
    return this.etaMin + ((base - this.etaMin) * (1 + Math.cos((Math.PI * t) / this.tMax))) / 2;
  }
}

/** `LinearLR`: base * (startFactor + (endFactor - startFactor) min(t, totalIters) / totalIters), a warm-up. */
export class LinearLR extends LRScheduler {
  readonly startFactor: number;
  readonly endFactor: number;
  readonly totalIters: number;

  constructor(
    optimizer: SchedulableOptimizer,
    options: { startFactor?: number; endFactor?: number; totalIters?: number } = {},
  ) {
    super(optimizer);
    this.startFactor = checkNumber(options.startFactor ?? 1 / 3, 'LinearLR: startFactor', 0, 1);
    if (this.startFactor === 0) throw new RangeError('LinearLR: startFactor must be > 0, got 0');
    this.endFactor = checkNumber(options.endFactor ?? 1, 'LinearLR: endFactor', 0, 1);
    this.totalIters = checkInteger(options.totalIters ?? 5, 'LinearLR: totalIters', 1);
    this.apply();
  }

  lrAt(base: number, t: number): number {
    const progress = Math.min(t, this.totalIters) / this.totalIters;
    return base * (this.startFactor + (this.endFactor - this.startFactor) * progress);
  }
}

/**
 * `SequentialLR`: schedulers[i] from step milestones[i - 1] on, counting its steps from
 * there (torchvision's recipe: LinearLR warm-up, then PolynomialLR).
 */
export class SequentialLR extends LRScheduler {
  readonly schedulers: readonly LRScheduler[];
  readonly milestones: readonly number[];

  constructor(optimizer: SchedulableOptimizer, options: { schedulers: LRScheduler[]; milestones: number[] }) {
    super(optimizer);
    const { schedulers, milestones } = options ?? {};
    if (!Array.isArray(schedulers) || schedulers.length === 0 || !schedulers.every((s) => s instanceof LRScheduler)) {
      throw new TypeError(
        `SequentialLR: schedulers must be a non-empty array of schedulers, got ${describe(schedulers)}`,
      );
    }
    if (schedulers.some((s) => s.optimizer !== optimizer)) {
      throw new RangeError('SequentialLR: every scheduler must drive the same optimizer as the SequentialLR');
    }
    if (!Array.isArray(milestones) || milestones.length !== schedulers.length - 1) {
      throw new RangeError(
        `SequentialLR: expected ${schedulers.length - 1} milestones (one fewer than schedulers), got ${describe(milestones)}`,
      );
    }
    milestones.forEach((m, i) => {
      checkInteger(m, `SequentialLR: milestones[${i}]`, i === 0 ? 1 : milestones[i - 1] + 1);
    });
    this.schedulers = [...schedulers];
    this.milestones = [...milestones];
    this.apply();
  }

  lrAt(base: number, t: number): number {
    const i = this.milestones.filter((m) => m <= t).length;
    return this.schedulers[i].lrAt(base, i === 0 ? t : t - this.milestones[i - 1]);
  }
}
