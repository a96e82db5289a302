#!/usr/bin/env node
/**
 * The `fcn` command: synthetic or real VOC data, training, evaluation and prediction of
 * the chapter's FCN from the shell. User mistakes end in one line on stderr and exit code 1.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadCheckpoint } from './checkpoint';
import { initProcessGroup, type ProcessGroup, torchrunEnv } from './distributed';
import { createFcn, FCN_ARCHS, type FcnArch, UPSAMPLING_INITS, type UpsamplingInit } from './fcn';
import { label2image, readImage, saveImageGrid } from './image';
import { launchWorkers, workerArgs } from './launch';
import type { Module } from './nn/module';
import { type ResNet, resnet18 } from './nn/resnet';
import { SGD } from './optim';
import { plotHistory } from './plot';
import { predict } from './predict';
import { save } from './serialization';
import type { Device, Tensor } from './tensor';
import * as torch from './torch';
import { evaluate, train } from './train';
import * as voc from './voc';

/** What `fcn train` stores in its checkpoints, so that eval, predict and --resume rebuild the run. */
interface RunConfig {
  arch: FcnArch;
  init: UpsamplingInit;
  numClasses: number;
  crop: [number, number];
  batchSize: number;
  lr: number;
  wd: number;
  momentum: number;
  seed: number;
  data: string;
}

function integer(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}`);
    return n;
  };
}

function tcpPort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('expected a TCP port, 1..65535');
  return n;
}

function nonNegative(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number >= 0');
  return n;
}

function cropSize(value: string): [number, number] {
  const match = /^(\d+)x(\d+)$/.exec(value);
  const size = match ? [Number(match[1]), Number(match[2])] : [];
  if (size.length !== 2 || !size.every((v) => v >= 32 && v % 32 === 0)) {
    throw new InvalidArgumentError('expected HEIGHTxWIDTH, both multiples of 32 (e.g. 320x480)');
  }
  return size as [number, number];
}

function devices(value: string): Device[] {
  const list = value.split(',').map((d) => d.trim());
  if (!list.every((d) => /^(cpu|cuda|cuda:\d+)$/.test(d))) {
    throw new InvalidArgumentError("expected cpu, cuda or cuda:N, several separated by ','");
  }
  return list as Device[];
}

const isDir = (p: string) => fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
const isFile = (p: string) => fs.statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;

function existingDir(value: string): string {
  if (!isDir(value)) throw new InvalidArgumentError('no such folder');
  return value;
}

function existingFile(value: string): string {
  if (!isFile(value)) throw new InvalidArgumentError('no such file');
  return value;
}

/** " [rank R]" in a worker of a distributed run, so that its errors say whose they are. */
const rankTag = process.env.WORLD_SIZE !== undefined ? ` [rank ${process.env.RANK}]` : '';

/** Runs a command's work; an error becomes one line and exit code 1. */
function action<A extends unknown[]>(name: string, fn: (...args: A) => Promise<void>) {
  return async (...args: A): Promise<void> => {
    try {
      await fn(...args);
    } catch (err) {
      const e = err as Error;
      console.error(`fcn ${name}${rankTag}: ${e.message.split('\n')[0]}`);
      process.exitCode = e.name === 'AbortError' ? 130 : 1;
    }
  };
}

async function buildModel(config: RunConfig, device: Device, weights?: string): Promise<Module> {
  let backbone: ResNet | undefined;
  if (weights) {
    backbone = await resnet18(weights === 'IMAGENET1K_V1' ? { weights } : { weights: { path: weights } });
  }
  return createFcn({ arch: config.arch, init: config.init, numClasses: config.numClasses, backbone }).to(device);
}

function setThreads(threads: number | undefined): void {
  if (threads !== undefined) torch.setNumThreads(threads);
}

const program = new Command()
  .name('fcn')
  .description('Fully Convolutional Networks (the d2l chapter) for VOC2012 segmentation, on libtorch')
  .version(JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version);

program
  .command('synth')
  .description('write a synthetic VOC2012 (shapes whose colour and form tell their class)')
  .requiredOption('--out <dir>', 'folder to write into (the data lands in DIR/VOCdevkit/VOC2012)')
  .option('--count <n>', 'images', integer(2), 48)
  .option('--height <px>', 'image height', integer(8), 160)
  .option('--width <px>', 'image width', integer(8), 240)
  .option('--seed <n>', 'seed of the scenes', integer(0), 0)
  .action(
    action('synth', async (o: { out: string; count: number; height: number; width: number; seed: number }) => {
      const root = await voc.synthesize(o.out, { count: o.count, height: o.height, width: o.width, seed: o.seed });
      console.log(root);
    }),
  );

program
  .command('download-voc')
  .description('download and unpack Pascal VOC2012 (2 GB; checked by SHA-1)')
  .requiredOption('--out <dir>', 'folder to download into (the data lands in DIR/VOCdevkit/VOC2012)')
  .option('--mirror <url>', 'base URL of a mirror holding VOCtrainval_11-May-2012.tar')
  .action(
    action('download-voc', async (o: { out: string; mirror?: string }) => {
      console.log(await voc.download({ root: o.out, mirror: o.mirror }));
    }),
  );

program
  .command('train')
  .description("train an FCN as the chapter's train_ch13 does; a checkpoint per epoch, curves and weights in --out")
  .requiredOption('--data <dir>', 'a VOC2012 folder (ImageSets, JPEGImages, SegmentationClass)', existingDir)
  .addOption(new Option('--arch <arch>', 'architecture').choices(FCN_ARCHS).default('fcn32s'))
  .addOption(new Option('--init <init>', 'transposed convolution init').choices(UPSAMPLING_INITS).default('bilinear'))
  .option('--epochs <n>', 'epochs', integer(1), 5)
  .option('--batch-size <n>', 'batch size', integer(1), 32)
  .option('--lr <rate>', 'learning rate', nonNegative, 0.001)
  .option('--wd <decay>', 'weight decay', nonNegative, 1e-3)
  .option('--momentum <m>', 'SGD momentum', nonNegative, 0)
  .option('--crop <HxW>', 'random crop size, multiples of 32', cropSize, [320, 480] as [number, number])
  .option('--device <list>', 'cpu, cuda, cuda:N; several (comma-separated) train data-parallel', devices, [
    'cpu',
  ] as Device[])
  .option('--weights <w>', 'backbone weights: IMAGENET1K_V1 (downloads once) or a .pth/.safetensors file')
  .option('--seed <n>', 'seed of initialisation, order and crops', integer(0), 0)
  .option('--threads <n>', 'CPU threads for libtorch', integer(1))
  .option('--out <dir>', 'output folder', 'fcn-output')
  .option('--resume', 'continue from DIR/checkpoint.safetensors with its settings', false)
  .option('--nproc-per-node <n>', 'start n worker processes here that train together (c10d: Gloo/NCCL)', integer(1))
  .option('--nnodes <n>', 'machines taking part, each running the same command', integer(1), 1)
  .option('--node-rank <n>', "this machine's index (0 hosts the rendezvous)", integer(0), 0)
  .option('--master-addr <addr>', "machine 0's address, as every machine reaches it", '127.0.0.1')
  .option('--master-port <port>', 'a free TCP port on machine 0 for the rendezvous', tcpPort, 29500)
  .option('--dist-timeout <s>', 'seconds the rendezvous and each collective may take', integer(1), 300)
  .action(
    action(
      'train',
      async (o: {
        data: string;
        arch: FcnArch;
        init: UpsamplingInit;
        epochs: number;
        batchSize: number;
        lr: number;
        wd: number;
        momentum: number;
        crop: [number, number];
        device: Device[];
        weights?: string;
        seed: number;
        threads?: number;
        out: string;
        resume: boolean;
        nprocPerNode?: number;
        nnodes: number;
        nodeRank: number;
        masterAddr: string;
        masterPort: number;
        distTimeout: number;
      }) => {
        const dist = torchrunEnv();
        if (o.nprocPerNode !== undefined && !dist) {
          if (o.nodeRank >= o.nnodes)
            throw new RangeError(`--node-rank ${o.nodeRank} must be below --nnodes ${o.nnodes}`);
          process.exitCode = await launchWorkers(process.argv[1], workerArgs(process.argv.slice(2)), {
            ...o,
            nprocPerNode: o.nprocPerNode,
          });
          return;
        }
        if (dist && o.device.length > 1) {
          throw new RangeError('--device: each process of a distributed run trains on one device (cpu or cuda)');
        }
        // torchrun's convention: a worker trains on the GPU of its local rank.
        const device: Device = dist && o.device[0] === 'cuda' ? `cuda:${dist.localRank}` : o.device[0];
        const lead = !dist || dist.rank === 0;
        const say = lead ? console.log : () => {};
        setThreads(o.threads);
        fs.mkdirSync(o.out, { recursive: true });
        const checkpointFile = path.join(o.out, 'checkpoint.safetensors');
        const resume = o.resume ? await loadCheckpoint(checkpointFile) : undefined;
        const config: RunConfig = resume
          ? (resume.config as unknown as RunConfig)
          : {
              arch: o.arch,
              init: o.init,
              numClasses: voc.VOC_CLASSES.length,
              crop: o.crop,
              batchSize: o.batchSize,
              lr: o.lr,
              wd: o.wd,
              momentum: o.momentum,
              seed: o.seed,
              data: path.resolve(o.data),
            };
        if (resume) {
          if (resume.epoch >= o.epochs)
            throw new Error(`the checkpoint has ${resume.epoch} epochs already; ask for more with --epochs`);
          say(
            `resuming after epoch ${resume.epoch} (${config.arch}, crop ${config.crop.join('x')}, batch ${config.batchSize})`,
          );
        }
        torch.manualSeed(config.seed);
        const net = await buildModel(config, device, resume ? undefined : o.weights);
        const optimizer = new SGD(net.parameters(), {
          lr: config.lr,
          weightDecay: config.wd,
          momentum: config.momentum,
        });
        const { trainIter, testIter } = await voc.loadDataVoc(config.batchSize, config.crop, {
          root: o.data,
          seed: config.seed,
          log: lead ? console.log : null,
          ...(dist ? { shard: { rank: dist.rank, worldSize: dist.worldSize } } : {}),
        });
        let group: ProcessGroup | undefined;
        if (dist) {
          group = await initProcessGroup({ ...dist, device, timeoutMs: o.distTimeout * 1000 });
          say(`${dist.worldSize} processes joined at ${dist.masterAddr}:${dist.masterPort} (${group.backend})`);
        }
        const controller = new AbortController();
        const onSigint = () => {
          if (controller.signal.aborted) process.exit(130);
          console.error('\nstopping after this step (Ctrl-C again to quit at once)');
          controller.abort();
        };
        process.on('SIGINT', onSigint);
        try {
          const history = await train(net, trainIter, testIter, {
            epochs: o.epochs,
            optimizer,
            devices: [device],
            processGroup: group,
            resume,
            checkpoint: checkpointFile,
            config: config as unknown as Record<string, unknown>,
            plot: path.join(o.out, 'curves.svg'),
            signal: controller.signal,
          });
          if (lead) {
            await plotHistory(history, path.join(o.out, 'curves.png'));
            fs.writeFileSync(path.join(o.out, 'history.json'), `${JSON.stringify(history, null, 2)}\n`);
            await save(net.stateDict(), path.join(o.out, 'model.safetensors'));
            say(`checkpoint, model.safetensors, curves.svg/png and history.json in ${o.out}`);
          }
        } catch (err) {
          if ((err as Error).name === 'AbortError') {
            throw Object.assign(new Error(`interrupted; the last complete epoch's checkpoint is ${checkpointFile}`), {
              name: 'AbortError',
            });
          }
          throw err;
        } finally {
          process.off('SIGINT', onSigint);
          await group?.close();
        }
      },
    ),
  );

async function modelFromCheckpoint(file: string, device: Device) {
  const checkpoint = await loadCheckpoint(file);
  const config = checkpoint.config as unknown as RunConfig;
  const net = await buildModel(config, 'cpu');
  net.loadStateDict(checkpoint.model);
  return { net: net.to(device), config };
}

program
  .command('eval')
  .description('pixel accuracy, mean IoU and per-class IoU of a checkpoint on the val split')
  .requiredOption('--checkpoint <file>', 'a checkpoint.safetensors written by fcn train', existingFile)
  .requiredOption('--data <dir>', 'a VOC2012 folder', existingDir)
  .option('--crop <HxW>', 'crop size (default: the one trained with)', cropSize)
  .option('--batch-size <n>', 'batch size', integer(1), 8)
  .option('--device <device>', 'cpu, cuda or cuda:N', (v) => devices(v)[0], 'cpu' as Device)
  .option('--threads <n>', 'CPU threads for libtorch', integer(1))
  .action(
    action(
      'eval',
      async (o: {
        checkpoint: string;
        data: string;
        crop?: [number, number];
        batchSize: number;
        device: Device;
        threads?: number;
      }) => {
        setThreads(o.threads);
        const { net, config } = await modelFromCheckpoint(o.checkpoint, o.device);
        const crop = o.crop ?? config.crop;
        const { testIter } = await voc.loadDataVoc(o.batchSize, crop, {
          root: o.data,
          seed: config.seed,
          dropLast: false,
        });
        const r = await evaluate(net, testIter, { device: o.device });
        console.log(
          `pixel accuracy ${r.pixelAccuracy.toFixed(4)}, mean IoU ${r.meanIoU.toFixed(4)}, loss ${r.loss.toFixed(4)}`,
        );
        console.log('class            IoU');
        r.classIoU.forEach((iou, c) => {
          console.log(`${(voc.VOC_CLASSES[c] ?? String(c)).padEnd(16)} ${iou === null ? '   -' : iou.toFixed(4)}`);
        });
      },
    ),
  );

program
  .command('predict')
  .description('colour label maps of images, and a grid of input | prediction')
  .argument('<images...>', 'image files (JPEG, PNG, ...)')
  .requiredOption('--checkpoint <file>', 'a checkpoint.safetensors written by fcn train', existingFile)
  .option('--out <dir>', 'output folder', 'fcn-predictions')
  .option('--full', 'label whole images of any size (tiles), not the top-left crop', false)
  .option('--crop <HxW>', 'crop size (default: the one trained with)', cropSize)
  .option('--device <device>', 'cpu, cuda or cuda:N', (v) => devices(v)[0], 'cpu' as Device)
  .action(
    action(
      'predict',
      async (
        images: string[],
        o: { checkpoint: string; out: string; full: boolean; crop?: [number, number]; device: Device },
      ) => {
        const missing = images.find((image) => !isFile(image));
        if (missing !== undefined) throw new Error(`no such image file '${missing}'`);
        const { net, config } = await modelFromCheckpoint(o.checkpoint, o.device);
        const crop = o.crop ?? config.crop;
        fs.mkdirSync(o.out, { recursive: true });
        const rows: Tensor[][] = [];
        for (const file of images) {
          const pixels = await readImage(file);
          const labels = await predict(net, pixels, { mode: o.full ? 'whole' : 'crop', cropSize: crop });
          const colour = label2image(labels);
          const target = path.join(o.out, `${path.parse(file).name}.png`);
          await saveImageGrid([[colour]], target, { gap: 0 });
          const shown = o.full ? pixels : pixels.narrow(1, 0, crop[0]).narrow(2, 0, crop[1]);
          rows.push([shown, colour]);
          console.log(`${file} -> ${target} (${labels.shape.join('x')})`);
        }
        const grid = path.join(o.out, 'grid.png');
        await saveImageGrid(rows, grid);
        console.log(`input | prediction: ${grid}`);
      },
    ),
  );

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`fcn: ${(err as Error).message}`);
  process.exitCode = 1;
});
