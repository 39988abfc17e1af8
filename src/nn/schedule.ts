// Learning-rate schedules as plain functions of the step index (0-based): lr = schedule(step).
// Set `optimizer.lr = schedule(step)` before each step. No state, no optimizer coupling.

export type LrSchedule = (step: number) => number;

function checkSteps(name: string, totalSteps: number) {
  if (!(Number.isInteger(totalSteps) && totalSteps > 0)) throw new Error(`${name}: totalSteps must be a positive integer, got ${totalSteps}`);
}

/** Always `base`. */
export function constantLr(base: number): LrSchedule {
  return () => base;
}

/**
 * Cosine annealing from `base` at step 0 to `minLr` at `totalSteps` (and after), the closed form of
 * torch's CosineAnnealingLR with T_max = totalSteps: minLr + (base - minLr) (1 + cos(pi t / T)) / 2.
 */
export function cosineLr(base: number, totalSteps: number, minLr = 0): LrSchedule {
  checkSteps('cosineLr', totalSteps);
  return (step) => {
    const t = Math.min(Math.max(step, 0), totalSteps);
    return minLr + ((base - minLr) * (1 + Math.cos((Math.PI * t) / totalSteps))) / 2;
  };
}

/** Linear from `base` at step 0 to `end` at `totalSteps` (and after). */
export function linearLr(base: number, totalSteps: number, end = 0): LrSchedule {
  checkSteps('linearLr', totalSteps);
  return (step) => {
    const t = Math.min(Math.max(step, 0), totalSteps);
    return base + ((end - base) * t) / totalSteps;
  };
}

/**
 * Linear warm-up over `warmupSteps` steps into `after`: step s < warmupSteps gives
 * after(0) (s + 1) / warmupSteps; later steps give after(s - warmupSteps).
 */
export function warmup(warmupSteps: number, after: LrSchedule): LrSchedule {
  if (!(Number.isInteger(warmupSteps) && warmupSteps >= 0)) throw new Error(`warmup: warmupSteps must be an integer >= 0, got ${warmupSteps}`);
  return (step) => (step < warmupSteps ? (after(0) * (step + 1)) / warmupSteps : after(step - warmupSteps));
}
