// Containers and shape layers: Sequential (children named '0', '1', ...), Flatten, Identity, and
// Dropout (inverted dropout, identity in eval). No ModuleDict; models register named children
// themselves.

import type { GpuContext } from '../../gpu/context.js';
import type { Tensor } from '../../autograd/tensor.js';
import type { Generator } from '../../util/rng.js';
import { EngineError } from '../../util/errors.js';
import { dropout, reshape } from '../../ops/index.js';
import { Module, type AnyModule } from '../module.js';

/** Children named '0', '1', ... applied in order; each must take and give one tensor. */
export class Sequential extends Module<[Tensor], Tensor, { layers: readonly Module[] }> {
  constructor(ctx: GpuContext, layers: readonly Module[]) {
    super(ctx, { layers });
    layers.forEach((m, i) => this.registerModule(String(i), m));
  }
  get layers(): readonly Module[] {
    return this.config.layers;
  }
  forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this.config.layers) y = m.forward(y);
    return y;
  }
  override spawn(): this {
    return new Sequential(
      this.ctx,
      this.config.layers.map((m) => m.spawn()),
    ) as this;
  }
}

/** [N, ...] -> [N, prod(...)] (torch.flatten(x, 1)). */
export class Flatten extends Module<[Tensor], Tensor, Record<string, never>> {
  constructor(ctx: GpuContext) {
    super(ctx, {});
  }
  forward(x: Tensor): Tensor {
    return reshape(x, [x.shape[0] ?? 1, -1]);
  }
}

/** y = x. */
export class Identity extends Module<[Tensor], Tensor, Record<string, never>> {
  constructor(ctx: GpuContext) {
    super(ctx, {});
  }
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Inverted dropout: in training, zero with probability p and scale the rest by 1/(1-p); identity in eval. */
export class Dropout extends Module<[Tensor], Tensor, { p: number; gen: Generator }> {
  constructor(ctx: GpuContext, config: { p: number; gen: Generator }) {
    super(ctx, config);
    if (!(config.p >= 0 && config.p < 1)) throw new EngineError('Dropout', `p = ${config.p} must be in [0, 1)`);
  }
  forward(x: Tensor): Tensor {
    return dropout(x, this.config.p, this.config.gen, this.training);
  }
}

export type { AnyModule };
