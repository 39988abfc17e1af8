// The one error type the library throws for bad input, lost devices and failed operations. `op`
// names the operation that rejected its input; the message names the tensor, shape, file or index.
// Plain TypeScript: CPU-only code (metrics, reports, file readers) uses it without touching the GPU.

export class EngineError extends Error {
  constructor(
    readonly op: string,
    message: string,
  ) {
    super(`${op}: ${message}`);
    this.name = 'EngineError';
  }
}
