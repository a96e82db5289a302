/**
 * What `npm run bench` (scripts/bench.ts) prints besides its measurements: the machine it ran
 * on (CPU model, cores, the instruction sets that decide convolution speed) and the table of
 * fcn-torch against each peer, with the best peer and its time over ours per row; and the median
 * every bench script reports.
 */
import fs from 'node:fs';
import os from 'node:os';

/** The median of timings (the lower middle one of an even count). */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** Median seconds of iters calls of fn. */
export async function timed(fn: () => Promise<unknown>, iters: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    const start = performance.now();
    await fn();
    times.push((performance.now() - start) / 1000);
  }
  return median(times);
}

/** A peer's median seconds for a row, or why it has none ('n/a', 'failed: ...'). */
export type Cell = number | string;

/** One workload: our median seconds and each peer's cell, in the order of the peers. */
export interface Row {
  name: string;
  ours: number;
  cells: Cell[];
}

/** The CPU model, core counts and the ISA extensions oneDNN and ONNX Runtime pick kernels by. */
export function machineLines(): string[] {
  let cpuinfo = '';
  try {
    cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // not Linux: the model from os.cpus() and no flags
  }
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(cpuinfo)?.[1]?.trim();
  const model = field('model name') ?? os.cpus()[0]?.model ?? 'unknown CPU';
  const flags = (field('flags') ?? '').split(/\s+/);
  const isa = flags.filter((flag) => /^(avx512|amx)|vnni|^avx2$|^fma$/.test(flag));
  const wide = isa.some((flag) => flag.startsWith('avx512'));
  const amx = isa.some((flag) => flag.startsWith('amx'));
  const missing = [wide ? '' : 'no AVX-512', amx ? '' : 'no AMX'].filter(Boolean).join(', ');
  const load = os
    .loadavg()
    .map((avg) => avg.toFixed(2))
    .join(' ');
  return [
    `CPU: ${model}, ${os.availableParallelism()} cores available (${os.cpus().length} logical CPUs), ` +
      `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    `ISA: ${isa.join(' ') || 'none of avx2/fma/avx512*/amx*/vnni'}${missing ? ` (${missing})` : ''}`,
    `load average at start: ${load} (other work on this machine slows every column)`,
  ];
}

const seconds = (cell: Cell) => (typeof cell === 'number' ? cell.toFixed(4) : cell);

/** The fastest peer of a row (index into the peers) and its time / ours, or undefined if none has a time. */
export function best(row: Row): { index: number; ratio: number } | undefined {
  let index = -1;
  row.cells.forEach((cell, i) => {
    if (typeof cell === 'number' && (index < 0 || cell < (row.cells[index] as number))) index = i;
  });
  return index < 0 ? undefined : { index, ratio: (row.cells[index] as number) / row.ours };
}

/** A row as one line while the bench runs. */
export function progressLine(row: Row, keys: string[]): string {
  const cells = row.cells.map((cell, i) => `${keys[i]} ${seconds(cell)}`).join('  ');
  const top = best(row);
  const verdict = top ? `best ${keys[top.index]}, ratio ${top.ratio.toFixed(2)}` : 'no peer';
  return `${row.name.padEnd(40)} ours ${row.ours.toFixed(4)}  ${cells}  ${verdict}`;
}

/** The model rows as a markdown table: seconds per peer, the best peer, best peer / ours. */
export function modelTable(rows: Row[], labels: string[]): string[] {
  const lines = [
    `| workload | fcn-torch | ${labels.join(' | ')} | best peer | best peer / ours |`,
    `|---|---|${labels.map(() => '---|').join('')}---|---|`,
  ];
  for (const row of rows) {
    const top = best(row);
    const verdict = top ? `${labels[top.index]} | ${top.ratio.toFixed(2)}` : '- | -';
    lines.push(`| ${row.name} | ${row.ours.toFixed(4)} | ${row.cells.map(seconds).join(' | ')} | ${verdict} |`);
  }
  return lines;
}
