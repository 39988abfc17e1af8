// The WebGPU availability check shared by the page (before it starts any worker) and the engine: a
// missing navigator.gpu and a null adapter each get their own message. No library code here, so the
// page bundle stays small.

export const NO_NAVIGATOR_GPU =
  'WebGPU is not available: this browser has no navigator.gpu (use a recent Chrome or Edge; Chromium on Linux needs --enable-unsafe-webgpu; Firefox and Safari need WebGPU enabled).';
export const NO_ADAPTER =
  'WebGPU is present but navigator.gpu.requestAdapter() returned null: no usable GPU adapter (WebGPU may be disabled by a flag, blocklisted for this GPU or driver, or unsupported in this context).';

/** The adapter, or an Error whose message says which of the two cases happened. */
export async function requestAdapterOrExplain(gpu: GPU | undefined | null): Promise<GPUAdapter> {
  if (!gpu) throw new Error(NO_NAVIGATOR_GPU);
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    throw new Error(`${NO_ADAPTER} (requestAdapter threw: ${(e as Error).message})`);
  }
  if (!adapter) throw new Error(NO_ADAPTER);
  return adapter;
}
