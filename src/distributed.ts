/**
 * Distributed data-parallel training on PyTorch's c10d, the engine under
 * `torch.distributed`: a process group per process (rendezvous through c10d's TCPStore,
 * Gloo for CPU tensors, NCCL for CUDA tensors in CUDA builds), the torchrun environment,
 * and the `DistributedSampler` rule that gives each rank its shard of an epoch.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import os from 'node:os';
import { checkInteger, checkOneOf, checkTensor } from './checks';
import { type NativeProcessGroup, native } from './native';
import type { Module } from './nn/module';
import type { Device, Tensor } from './tensor';
import { tensor } from './torch';

/** c10d backends: Gloo (CPU tensors) and NCCL (CUDA tensors, CUDA builds only). */
export type DistributedBackend = 'gloo' | 'nccl';

/** How an all-reduce combines the ranks' tensors. */
export type ReduceOp = 'sum' | 'avg' | 'max' | 'min' | 'product';

/** Options of {@link initProcessGroup}, as `torch.distributed.init_process_group` takes them. */
export interface ProcessGroupOptions {
  /** This process's rank, 0 ≤ rank < worldSize; rank 0 hosts the rendezvous. */
  rank: number;
  /** The number of processes, on all machines together. */
  worldSize: number;
  /** Address of rank 0's machine, as every process reaches it (default 127.0.0.1). */
  masterAddr?: string;
  /** A free TCP port there for the rendezvous (default 29500, as torchrun). */
  masterPort?: number;
  /** 'gloo' or 'nccl' (default: nccl for a CUDA device, else gloo). */
  backend?: DistributedBackend;
  /** The device this process trains on (default 'cpu'); collectives run on its tensors. */
  device?: Device;
  /**
   * Milliseconds that the rendezvous and each collective may take (default 300 000): a
   * peer that stops answering makes the others fail after this long instead of hanging.
   */
  timeoutMs?: number;
  /** The network interface Gloo uses (default: the one that reaches the master; GLOO_SOCKET_IFNAME). */
  interface?: string;
  /**
   * The launcher hosts the rendezvous store at masterAddr:masterPort (torchrun does, and says
   * so with TORCHELASTIC_USE_AGENT_STORE=True): rank 0 then joins it as the others do.
   */
  agentStore?: boolean;
}

const isLoopback = (address: string) => address.startsWith('127.') || address === '::1';

/** Whether address belongs to one of this machine's network interfaces. */
function isLocal(address: string): boolean {
  if (isLoopback(address)) return true;
  return Object.values(os.networkInterfaces()).some((list) => list?.some((i) => i.address === address));
}

/**
 * Waits until the master's port accepts a TCP connection and returns the local address that
 * reached it (the address the peers reach this process at), or fails at the deadline.
 */
async function reachMaster(host: string, port: number, timeoutMs: number, who: string): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      return await new Promise<string>((resolve, reject) => {
        const socket = net.connect({ host, port, timeout: Math.max(1, deadline - Date.now()) });
        socket.once('connect', () => {
          const local = socket.localAddress ?? '127.0.0.1';
          socket.destroy();
          resolve(local);
        });
        socket.once('timeout', () => socket.destroy(new Error('connection timed out')));
        socket.once('error', reject);
      });
    } catch (e) {
      lastError = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, deadline - Date.now()))));
    }
  }
  throw new Error(
    `${who} could not reach the master at ${host}:${port} within ${timeoutMs} ms (${lastError}): ` +
      'is rank 0 running there, and are the address and port right?',
  );
}

/**
 * One process's membership of a group of processes that train together; every rank must
 * make the same collective calls in the same order. {@link train} uses it when its
 * `processGroup` option is set.
 */
export class ProcessGroup {
  /** @internal */
  readonly native: NativeProcessGroup;

  /** @internal */
  constructor(
    handle: NativeProcessGroup,
    readonly rank: number,
    readonly worldSize: number,
    readonly backend: DistributedBackend,
    readonly device: Device,
  ) {
    this.native = handle;
  }

  /** Replaces t, on every rank, by the reduction of all ranks' t (in place). */
  async allReduce(t: Tensor, op: ReduceOp = 'sum'): Promise<void> {
    return this.native.allReduce(checkTensor(t, 'tensor'), op);
  }

  /** Copies root's t into every rank's t. */
  async broadcast(t: Tensor, root = 0): Promise<void> {
    return this.native.broadcast(checkTensor(t, 'tensor'), checkInteger(root, 'root', 0, this.worldSize - 1));
  }

  /** Copies root's parameters and buffers into every rank's model (done once before training). */
  async broadcastModule(model: Module, root = 0): Promise<void> {
    return this.native.broadcastModule(model.native, checkInteger(root, 'root', 0, this.worldSize - 1));
  }

  /** Settles once every rank has called it. */
  async barrier(): Promise<void> {
    return this.native.barrier();
  }

  /** Sums numbers across the ranks (exact for integers below 2^53). */
  async allReduceNumbers(values: number[], op: ReduceOp = 'sum'): Promise<number[]> {
    const t = tensor(values, { dtype: 'float64', device: this.device });
    try {
      await this.allReduce(t, op);
      return [...(t.toTypedArray() as Float64Array)];
    } finally {
      t.dispose();
    }
  }

  /** Drops the connections once the calls made before it have finished. */
  async close(): Promise<void> {
    return this.native.close();
  }
}

/**
 * Joins a process group: rank 0 hosts a c10d TCPStore at masterAddr:masterPort, every rank
 * meets there, then the backend connects every pair of ranks. Mistakes fail fast with a
 * message: bad ranks or ports at once, a master address that does not resolve at once, a
 * master that cannot be reached after `timeoutMs`.
 */
export async function initProcessGroup(options: ProcessGroupOptions): Promise<ProcessGroup> {
  const worldSize = checkInteger(options.worldSize, 'worldSize', 1, 1 << 20);
  const rank = checkInteger(options.rank, 'rank', 0, worldSize - 1);
  const masterPort = checkInteger(options.masterPort ?? 29500, 'masterPort', 1, 65535);
  const timeoutMs = checkInteger(options.timeoutMs ?? 300_000, 'timeoutMs', 1, 2 ** 31 - 1);
  const device = options.device ?? 'cpu';
  const backend = options.backend ?? (device.startsWith('cuda') ? 'nccl' : 'gloo');
  checkOneOf(backend, 'backend', ['gloo', 'nccl'] as const);
  if ((backend === 'nccl') !== device.startsWith('cuda')) {
    throw new RangeError(`backend '${backend}' does not work on '${device}' tensors: use gloo for cpu, nccl for cuda`);
  }
  const masterAddr = options.masterAddr ?? '127.0.0.1';
  const who = `rank ${rank} of ${worldSize}`;
  let address: string;
  try {
    ({ address } = await dns.lookup(masterAddr));
  } catch (e) {
    throw new Error(
      `${who}: the master address '${masterAddr}' does not resolve (${(e as NodeJS.ErrnoException).code})`,
    );
  }
  const hostsStore = rank === 0 && !options.agentStore;
  if (hostsStore && !isLocal(address)) {
    throw new Error(
      `${who}: rank 0 hosts the rendezvous, so the master address '${masterAddr}' (${address}) must be an ` +
        "address of this machine, and it is not: run rank 0 there, or give this machine's address",
    );
  }
  const deadline = Date.now() + timeoutMs;
  // Rank 0 is reached at the master address; the others at the address that reaches it.
  const hostname = hostsStore ? address : await reachMaster(address, masterPort, timeoutMs, who);
  const handle = new native.NativeProcessGroup();
  await handle.connect({
    rank,
    worldSize,
    hostsStore,
    masterAddr: address,
    masterPort,
    hostname,
    interface: options.interface ?? process.env.GLOO_SOCKET_IFNAME ?? '',
    timeoutMs: Math.max(1, deadline - Date.now()),
    backend,
    device,
  });
  return new ProcessGroup(handle, rank, worldSize, backend, device);
}

/** A TCP port that is free on this machine now: a masterPort for a group on one machine. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** What the torchrun environment says about this process, for {@link initProcessGroup}. */
export interface TorchrunEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  masterAddr: string;
  masterPort: number;
  /** TORCHELASTIC_USE_AGENT_STORE=True: torchrun's agent hosts the store. */
  agentStore: boolean;
}

/**
 * Reads torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT,
 * TORCHELASTIC_USE_AGENT_STORE);
 * null when WORLD_SIZE is not set, a RangeError naming the variable when one is malformed.
 */
export function torchrunEnv(env: NodeJS.ProcessEnv = process.env): TorchrunEnv | null {
  if (env.WORLD_SIZE === undefined) return null;
  const int = (name: string, fallback?: number): number => {
    const text = env[name];
    if (text === undefined && fallback !== undefined) return fallback;
    const value = Number(text);
    if (text === undefined || text.trim() === '' || !Number.isInteger(value) || value < 0) {
      throw new RangeError(`${name}: expected an integer >= 0 in the environment, got ${JSON.stringify(text)}`);
    }
    return value;
  };
  const worldSize = int('WORLD_SIZE');
  const rank = int('RANK');
  if (worldSize < 1 || rank >= worldSize) {
    throw new RangeError(`RANK=${rank} and WORLD_SIZE=${worldSize}: expected 0 <= RANK < WORLD_SIZE`);
  }
  return {
    rank,
    worldSize,
    localRank: int('LOCAL_RANK', 0),
    masterAddr: env.MASTER_ADDR ?? '127.0.0.1',
    masterPort: int('MASTER_PORT', 29500),
    agentStore: env.TORCHELASTIC_USE_AGENT_STORE === 'True',
  };
}

/**
 * The indices of `order` that rank reads, by `torch.utils.data.DistributedSampler`'s rule:
 * with pad, order is extended by its own start to a multiple of worldSize (every rank gets
 * the same count); rank takes every worldSize-th index from position rank.
 */
export function shardOf(order: readonly number[], rank: number, worldSize: number, pad: boolean): number[] {
  checkInteger(worldSize, 'worldSize', 1, 1 << 20);
  checkInteger(rank, 'rank', 0, worldSize - 1);
  const total = pad ? Math.ceil(order.length / worldSize) * worldSize : order.length;
  const padded = [...order];
  while (padded.length < total) padded.push(...order.slice(0, total - padded.length));
  const shard: number[] = [];
  for (let i = rank; i < total; i += worldSize) shard.push(padded[i]);
  return shard;
}
