// Stopping an experiment: the runner checks its AbortSignal between stages and, through the progress
// callback it hands the task, after every evaluation batch, so a stop request during a long
// evaluation pass ends it there. A stub task (no data set) counts the batches it got to evaluate.

import { describe, it, expect } from 'vitest';
import { useGpu } from './helpers.js';
import { MLP } from '../src/models/mlp.js';
import { memoryStore, runTaskExperiment, type ExperimentTask } from '../src/unlearn/core/experiment.js';
import { randomForgetSplit } from '../src/unlearn/core/split.js';
import type { UnlearnProblem } from '../src/unlearn/core/task.js';

const gpu = useGpu();

describe('runTaskExperiment stops inside an evaluation pass', () => {
  it('an abort raised at batch 3 of the RT evaluation ends the pass there and stores no results', async () => {
    const { ctx } = gpu;
    const ac = new AbortController();
    const BATCHES = 50;
    let evaluated = 0;
    const task: ExperimentTask<unknown, unknown, number, { method: string; rteMinutes: number }> = {
      split: randomForgetSplit(20, 0.1, 0),
      makeModel: (seed) => new MLP(ctx, { sizes: [2, 2], seed }),
      train: async () => {},
      problem: () => ({}) as UnlearnProblem<unknown, unknown>,
      async evaluate(_model, label, progress) {
        for (let b = 1; b <= BATCHES; b++) {
          evaluated++;
          if (b === 3) ac.abort();
          progress?.(`${label} eval`, b, BATCHES);
        }
        return 0;
      },
      row: (method) => ({ method, rteMinutes: 0 }),
      failedRow: (method) => ({ method, rteMinutes: NaN }),
    };
    const store = memoryStore();
    const run = runTaskExperiment(task, { methods: [], seed: 0 }, { store, signal: ac.signal });
    await expect(run).rejects.toThrow(/abort/i);
    expect(evaluated, 'batches evaluated before the stop took effect').toBe(3);
    expect([...store.files.keys()].some((k) => k.startsWith('results')), 'no results written').toBe(false);
  });
});
