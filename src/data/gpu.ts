// Upload of a CPU mini-batch to the device: x as an f32 tensor [B, C, H, W], y as an i32 tensor [B].
// It only uploads (no augmentation, no autograd: the tensors are leaves).

import { type GpuContext } from '../gpu/context.js';
import type { Tensor } from '../autograd/tensor.js';
import type { Batch } from './loader.js';
import { EngineError } from '../util/errors.js';
import { tensor } from '../ops/index.js';

/** Uploads a batch after checking every label lies in [0, numClasses) (default: batch.numClasses). */
export function toGpuBatch(ctx: GpuContext, batch: Batch, numClasses = batch.numClasses): { x: Tensor; y: Tensor } {
  const [B, C, H, W] = batch.shape;
  if (batch.x.length !== B * C * H * W)
    throw new EngineError('toGpuBatch', `x has ${batch.x.length} values, shape [${batch.shape.join(', ')}] needs ${B * C * H * W}`);
  if (batch.y.length !== B) throw new EngineError('toGpuBatch', `y has ${batch.y.length} labels for batch size ${B}`);
  for (let i = 0; i < B; i++) {
    const v = batch.y[i]!;
    if (!(v >= 0 && v < numClasses))
      throw new EngineError('toGpuBatch', `label ${v} at batch position ${i} (sample ${batch.indices[i]}) is outside [0, ${numClasses})`);
  }
  return { x: tensor(ctx, batch.x, [B, C, H, W], 'f32'), y: tensor(ctx, batch.y, [B], 'i32') };
}
