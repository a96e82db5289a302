/**
 * Which precision a forward runs in: `precision` of {@link predict} and `--precision` of the
 * CLI. bfloat16 pays only where the hardware multiplies in it (CPUs with AVX-512 BF16 or AMX,
 * GPUs with bfloat16 tensor cores); elsewhere every bfloat16 product is emulated, slower than
 * float32, so fcn-torch runs float32 there (see `torch.backends.emulatedBfloat16`).
 */
import { checkOneOf } from './checks';
import { type CpuCapabilities, native } from './native';
import type { Device } from './tensor';

export type { CpuCapabilities };

/** The precisions a forward can be asked for: 'auto' picks bfloat16 where the hardware has bfloat16 units. */
export const PRECISIONS = ['auto', 'float32', 'bfloat16'] as const;
export type Precision = (typeof PRECISIONS)[number];

let capabilities: CpuCapabilities | undefined;

/** What this CPU has (read once). */
export function cpuCapabilities(): CpuCapabilities {
  capabilities ??= Object.freeze(native.cpuCapabilities());
  return capabilities;
}

/**
 * The precision a forward on `device` runs in when asked for `precision`: 'float32' is
 * float32; 'bfloat16' is bfloat16 mixed precision (autocast) on a GPU, and on a CPU where it
 * has bfloat16 units or `torch.backends.emulatedBfloat16` is set, float32 on other CPUs;
 * 'auto' is bfloat16 on CPUs with bfloat16 units and float32 elsewhere (GPUs included, until
 * measured there).
 */
export function resolvePrecision(precision: Precision, device: Device | string = 'cpu'): 'float32' | 'bfloat16' {
  const asked = checkOneOf(precision, 'precision', PRECISIONS);
  const cpu = !String(device).startsWith('cuda');
  const units = cpu && cpuCapabilities().bfloat16Units;
  if (asked === 'float32') return 'float32';
  if (asked === 'auto') return units ? 'bfloat16' : 'float32';
  return !cpu || units || native.backends.emulatedBfloat16 ? 'bfloat16' : 'float32';
}
