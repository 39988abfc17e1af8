// Parameter-free activation layers (torch.nn.ReLU, GELU, SiLU, Tanh, Sigmoid) over the elementwise
// table. Any shape in, same shape out. No in-place variants.

import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../autograd/tensor.js';
import { EngineError } from '../../util/errors.js';
import { gelu, geluTanh, relu, sigmoid, silu, tanh } from '../../ops/index.js';
import { Module } from '../module.js';

export type ActivationKind = 'relu' | 'gelu' | 'geluTanh' | 'silu' | 'tanh' | 'sigmoid';
const ACTIVATIONS: Record<ActivationKind, (x: Tensor) => Tensor> = { relu, gelu, geluTanh, silu, tanh, sigmoid };

/** y = f(x) for one activation kind. */
export class Activation extends Module<[Tensor], Tensor, { kind: ActivationKind }> {
  constructor(ctx: GpuContext, config: { kind: ActivationKind }) {
    super(ctx, config);
    if (!(config.kind in ACTIVATIONS))
      throw new EngineError('Activation', `unknown activation '${config.kind}' (${Object.keys(ACTIVATIONS).join(', ')})`);
  }
  forward(x: Tensor): Tensor {
    return ACTIVATIONS[this.config.kind](x);
  }
}

/** max(x, 0). */
export class ReLU extends Activation {
  constructor(ctx: GpuContext, _config: Record<string, never> = {}) {
    super(ctx, { kind: 'relu' });
  }
  override spawn(): this {
    return new ReLU(this.ctx) as this;
  }
}

/** torch.nn.GELU(approximate): exact (erf) by default, 'tanh' for the tanh approximation. */
export class GELU extends Activation {
  constructor(ctx: GpuContext, readonly gelu: { approximate?: 'none' | 'tanh' } = {}) {
    if (gelu.approximate !== undefined && gelu.approximate !== 'none' && gelu.approximate !== 'tanh')
      throw new EngineError('GELU', `approximate must be 'none' or 'tanh', got '${String(gelu.approximate)}'`);
    super(ctx, { kind: gelu.approximate === 'tanh' ? 'geluTanh' : 'gelu' });
  }
  override spawn(): this {
    return new GELU(this.ctx, this.gelu) as this;
  }
}
