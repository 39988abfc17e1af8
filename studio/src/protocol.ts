// Messages between the page (main.ts) and the engine worker (worker.ts): a request/response pair per
// command, plus events (progress, training points) pushed while a command runs. Types only, no code
// that touches the GPU, so the page bundle does not pull in the library.

import type { AdapterReport, Arch, Budget, DataInfo, DataRequest, ForgetRequest, Row, SampleSet, SamplePredictions, SplitInfo, TrainPoint, TrainRecipe } from './engine.js';

export type { AdapterReport, Arch, Budget, DataInfo, DataRequest, ForgetRequest, Row, SampleSet, SamplePredictions, SplitInfo, TrainPoint, TrainRecipe };

/** Command name -> [argument, result]. */
export interface Commands {
  init: [void, AdapterReport];
  loadData: [DataRequest, DataInfo];
  images: [number[], { images: Uint8Array; labels: number[]; shape: [number, number, number] }];
  setModel: [Arch, { parameters: number; name: string }];
  loadCheckpoint: [{ bytes: Uint8Array; name: string }, { tensors: number; name: string }];
  pretrain: [TrainRecipe, { seconds: number }];
  setForget: [ForgetRequest, SplitInfo];
  retrain: [TrainRecipe, { rt: Row; original: Row }];
  runMethod: [{ name: string; budget: Budget; lambda?: number }, Row];
  samples: [void, { set: SampleSet; predictions: SamplePredictions[]; classes: string[] } | null];
  report: ['json' | 'csv' | 'md', string];
  modelFile: [string, Uint8Array];
}

export type CommandName = keyof Commands;

export interface Request<K extends CommandName = CommandName> {
  id: number;
  cmd: K;
  arg: Commands[K][0];
}

/** 'stop' aborts the running long command (its reply then has stopped: true). */
export interface StopMessage {
  id: 0;
  cmd: 'stop';
}

export type Reply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: string; stopped: boolean };

export type WorkerEvent =
  | { event: 'progress'; phase: string; done: number; total: number }
  | { event: 'point'; point: TrainPoint };

export type FromWorker = Reply | WorkerEvent;
