// Node entry for the device: Dawn through the `webgpu` package. Kept out of the browser path:
// only src/node.ts imports it.

import { GpuContext } from './context.js';

export interface NodeContextOptions {
  /** Extra Dawn flags (`create([...])`), e.g. 'backend=vulkan'. */
  flags?: string[];
  powerPreference?: GPUPowerPreference;
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
  return GpuContext.fromGPU(gpu, { powerPreference: options.powerPreference });
}
