/**
 * The launcher behind `fcn train --nproc-per-node N`: as torchrun does, it starts N worker
 * processes on this machine with the torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK,
 * LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), forwards Ctrl-C, SIGTERM and SIGHUP to them
 * (they run in their own process group, so a terminal's Ctrl-C reaches each of them once),
 * says which worker failed and how, and then stops the others, so that a failed run never
 * leaves workers behind. Each worker also holds a pipe from the launcher and stops when it
 * closes, so that workers die with their launcher even when it is killed (SIGKILL). With
 * `maxRestarts`, as torchrun's elastic agent with `--max-restarts`, a failed run starts its
 * workers again (TORCHELASTIC_RESTART_COUNT says which restart), and they resume from the last
 * complete checkpoint.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';

/** The environment variable that tells a worker which file descriptor its launcher's pipe is. */
const LAUNCHER_PIPE = 'FCN_LAUNCHER_PIPE';

/**
 * In a worker started by {@link launchWorkers}: stops this process when the launcher's pipe
 * closes (the launcher ended, however it ended). Does nothing in other processes.
 */
export function watchLauncher(onGone: () => void): void {
  const fd = Number(process.env[LAUNCHER_PIPE]);
  if (!Number.isInteger(fd) || fd < 3) return;
  const pipe = new net.Socket({ fd, readable: true, writable: false });
  pipe.on('error', onGone);
  pipe.on('close', onGone);
  pipe.resume();
  pipe.unref();
}

/** Where and how many workers this machine starts. */
export interface LaunchOptions {
  /** Workers on this machine. */
  nprocPerNode: number;
  /** Machines taking part (default 1). */
  nnodes: number;
  /** This machine's index, 0 ≤ nodeRank < nnodes (default 0; machine 0 hosts rank 0). */
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
  /** Times the workers start again after a failure (default 0). */
  maxRestarts?: number;
}

/** Command-line options that belong to the launcher, not to the workers. */
const LAUNCHER_OPTIONS = [
  '--nproc-per-node',
  '--nnodes',
  '--node-rank',
  '--master-addr',
  '--master-port',
  '--max-restarts',
];

/** argv without the launcher's options (`--name value` and `--name=value`). */
export function workerArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].split('=')[0];
    if (!LAUNCHER_OPTIONS.includes(name)) out.push(argv[i]);
    else if (!argv[i].includes('=')) i++;
  }
  return out;
}

/**
 * Runs `node script ...args` as this machine's workers and resolves with the exit code of
 * the run: 0 when every worker succeeded, 130 after Ctrl-C, else the first failure's code
 * (after `maxRestarts` restarts). Without --threads in args, each worker gets an equal share
 * of this machine's cores.
 */
export async function launchWorkers(script: string, args: readonly string[], o: LaunchOptions): Promise<number> {
  const maxRestarts = o.maxRestarts ?? 0;
  for (let restart = 0; ; restart++) {
    const { code, interrupted } = await runWorkers(script, args, o, restart);
    if (code === 0 || interrupted || restart >= maxRestarts) return code;
    console.error(
      `fcn train: restarting the workers (restart ${restart + 1} of ${maxRestarts}); they resume from the last checkpoint`,
    );
  }
}

/** One start of the workers, as {@link launchWorkers} says. */
function runWorkers(
  script: string,
  args: readonly string[],
  o: LaunchOptions,
  restart: number,
): Promise<{ code: number; interrupted: boolean }> {
  const worldSize = o.nprocPerNode * o.nnodes;
  const threads = Math.max(1, Math.floor(os.availableParallelism() / o.nprocPerNode));
  const workerArgv = args.some((a) => a.split('=')[0] === '--threads')
    ? [...args]
    : [...args, '--threads', `${threads}`];
  const children = Array.from({ length: o.nprocPerNode }, (_, localRank) =>
    spawn(process.execPath, [...process.execArgv, script, ...workerArgv], {
      stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
      detached: true,
      env: {
        ...process.env,
        [LAUNCHER_PIPE]: '3',
        RANK: `${o.nodeRank * o.nprocPerNode + localRank}`,
        WORLD_SIZE: `${worldSize}`,
        LOCAL_RANK: `${localRank}`,
        LOCAL_WORLD_SIZE: `${o.nprocPerNode}`,
        GROUP_RANK: `${o.nodeRank}`,
        MASTER_ADDR: o.masterAddr,
        MASTER_PORT: `${o.masterPort}`,
        TORCHELASTIC_RESTART_COUNT: `${restart}`,
        TORCHELASTIC_MAX_RESTARTS: `${o.maxRestarts ?? 0}`,
      },
    }),
  );
  let interrupted = false;
  let failure: number | null = null;
  const signalRunning = (signal: NodeJS.Signals) => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  const onSigint = () => {
    interrupted = true;
    signalRunning('SIGINT');
  };
  const onSigterm = () => signalRunning('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  process.on('SIGHUP', onSigterm);
  return new Promise((resolve) => {
    let running = children.length;
    children.forEach((child, localRank) => {
      child.on('exit', (code, signal) => {
        running--;
        if ((code !== 0 || signal) && failure === null) {
          failure = code ?? 1;
          if (!interrupted) {
            const rank = o.nodeRank * o.nprocPerNode + localRank;
            const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
            console.error(`fcn train: worker rank ${rank} (pid ${child.pid}) ${how}; stopping the other workers`);
          }
          signalRunning('SIGTERM');
        }
        if (running === 0) {
          process.off('SIGINT', onSigint);
          process.off('SIGTERM', onSigterm);
          process.off('SIGHUP', onSigterm);
          resolve({ code: interrupted ? 130 : (failure ?? 0), interrupted });
        }
      });
    });
  });
}
