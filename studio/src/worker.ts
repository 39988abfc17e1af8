// The engine worker: a dedicated Web Worker that owns the GPU device and runs every long job (data
// decoding, training, unlearning, evaluation), so the page stays responsive. It answers the page's
// commands (protocol.ts) through the Engine (engine.ts) and nothing else; it holds no UI logic.

import { Engine, StoppedError, type MethodName, type Progress } from './engine.js';
import type { CommandName, Commands, FromWorker, Request, StopMessage } from './protocol.js';

interface WorkerScope {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((ev: MessageEvent<Request | StopMessage>) => void) | null;
  navigator: { gpu?: GPU };
}
const scope = self as unknown as WorkerScope;

let engine: Engine | null = null;
/** the running long job's controller (one at a time) */
let job: AbortController | null = null;

const post = (m: FromWorker, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

/** progress events at most every 100 ms per phase, and always the last one */
function progressPoster(): Progress {
  let last = 0;
  let lastPhase = '';
  return (phase, done, total) => {
    const now = performance.now();
    if (phase === lastPhase && done < total && now - last < 100) return;
    last = now;
    lastPhase = phase;
    post({ event: 'progress', phase, done, total });
  };
}

const LONG = new Set<CommandName>(['loadData', 'pretrain', 'retrain', 'runMethod', 'loadCheckpoint']);

async function handle<K extends CommandName>(cmd: K, arg: Commands[K][0], signal: AbortSignal): Promise<Commands[K][1]> {
  type R = Commands[K][1];
  const progress = progressPoster();
  const point = (p: Parameters<Parameters<Engine['pretrain']>[1]>[0]) => post({ event: 'point', point: p });
  if (cmd === 'init') {
    engine ??= await Engine.open(scope.navigator.gpu);
    return engine.adapter as R;
  }
  if (!engine) throw new Error('the GPU device is not open');
  const e = engine;
  switch (cmd) {
    case 'loadData':
      return (await e.loadData(arg as Commands['loadData'][0], progress)) as R;
    case 'images':
      return e.images(arg as number[]) as R;
    case 'setModel': {
      const r = e.setModel(arg as Commands['setModel'][0]);
      return { ...r, name: e.archName() } as R;
    }
    case 'loadCheckpoint': {
      const a = arg as Commands['loadCheckpoint'][0];
      return { ...e.loadCheckpoint(a.bytes, a.name), name: e.archName() } as R;
    }
    case 'pretrain':
      return (await e.pretrain(arg as Commands['pretrain'][0], point, signal)) as R;
    case 'setForget':
      return e.setForget(arg as Commands['setForget'][0]) as R;
    case 'retrain':
      return (await e.retrain(arg as Commands['retrain'][0], point, progress, signal)) as R;
    case 'runMethod': {
      const a = arg as Commands['runMethod'][0];
      return (await e.runMethod(a.name as MethodName, a.budget, a.lambda, progress, signal)) as R;
    }
    case 'samples':
      return e.samples() as R;
    case 'report':
      return e.report(arg as Commands['report'][0]) as R;
    case 'modelFile':
      return (await e.modelFile(arg as string)) as R;
  }
  throw new Error(`unknown command ${String(cmd)}`);
}

scope.onmessage = (ev) => {
  const msg = ev.data;
  if (msg.cmd === 'stop') {
    job?.abort();
    return;
  }
  const { id, cmd, arg } = msg;
  const long = LONG.has(cmd);
  if (long && job) {
    post({ id, ok: false, error: `busy: another job is running (stop it first)`, stopped: false });
    return;
  }
  const ctl = new AbortController();
  if (long) job = ctl;
  handle(cmd, arg, ctl.signal).then(
    // results are copied, not transferred: the engine keeps e.g. the model files it hands out
    (result) => post({ id, ok: true, result }),
    (err: unknown) => {
      const stopped = err instanceof StoppedError || ctl.signal.aborted;
      post({ id, ok: false, error: stopped ? 'stopped by the user' : errorText(err), stopped });
    },
  ).finally(() => {
    if (job === ctl) job = null;
  });
};

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
