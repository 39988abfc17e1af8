// Node entry for the device: Dawn through the `webgpu` package. Kept out of the browser path:
// only src/node.ts imports it. It also reads the fault-injection variable UNLEARN_GPU_FAULT (see
// docs/FAULTS.md), so the command line's device-loss handling can be tested end to end.

import { GpuContext } from './context.js';
import { EngineError } from '../util/errors.js';

export interface NodeContextOptions {
  /** Extra Dawn flags (`create([...])`), e.g. 'backend=vulkan'. */
  flags?: string[];
  powerPreference?: GPUPowerPreference;
  /** Fault to inject (default: the UNLEARN_GPU_FAULT environment variable), e.g. 'lose-device-after-dispatches=500'. */
  fault?: string;
}

/**
 * Create a GpuContext on Dawn in Node. Enables the `allow_unsafe_apis` and
 * `vulkan_enable_f16_on_nvidia` toggles. Call `ctx.destroy()` when done so the process can exit.
 */
export async function createNodeContext(options: NodeContextOptions = {}): Promise<GpuContext> {
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = (await import('node:os')).tmpdir();
  const { create, globals } = await import('webgpu');
  // Dawn's classes (GPUBufferUsage, ...) as globals, like in a browser; only missing ones are set.
  for (const [k, v] of Object.entries(globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  const gpu = create(['enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia', ...(options.flags ?? [])]);
  const ctx = await GpuContext.fromGPU(gpu, { powerPreference: options.powerPreference });
  const fault = options.fault ?? process.env.UNLEARN_GPU_FAULT;
  if (fault) applyFault(ctx, fault);
  return ctx;
}

/**
 * Fault injection for tests of the whole program: `lose-device-after-dispatches=N` destroys the device
 * right after the N-th kernel dispatch; `lose-device-on-signal=SIGUSR2` destroys it when the process
 * gets that signal (a test picks the moment by watching the progress output). Either is reported
 * exactly like a driver's device loss.
 */
function applyFault(ctx: GpuContext, spec: string): void {
  const s = spec.trim();
  const after = /^lose-device-after-dispatches=(\d+)$/.exec(s);
  const signal = /^lose-device-on-signal=(SIGUSR1|SIGUSR2|SIGHUP)$/.exec(s);
  if (after) ctx.loseDeviceAfter(Number(after[1]));
  else if (signal) process.once(signal[1] as NodeJS.Signals, () => ctx.device.destroy());
  else throw new EngineError('UNLEARN_GPU_FAULT', `unknown fault '${spec}' (known: lose-device-after-dispatches=N, lose-device-on-signal=SIGUSR2)`);
}
