// The `forward` parity verb: one forward pass of a named architecture on the tensors of a safetensors
// file, written to another, so an imported PyTorch model can be checked against PyTorch's own output
// (ARCHITECTURES.md, "The forward parity verb"). Everything is validated before the GPU work: the
// architecture and its options, every weight shard (names, shapes, finite values), the input tensors.

import { existsSync } from 'node:fs';
import type { GpuContext } from '../gpu/context.js';
import type { Tensor } from '../autograd/tensor.js';
import { EngineError } from '../util/errors.js';
import { architecture } from '../models/registry.js';
import { loadSafetensorsFile, loadSafetensorsShards, saveSafetensorsFile } from '../io/safetensors-node.js';
import { toFloat32, toInt32, type SafetensorsTensor } from '../io/safetensors.js';
import { tensor } from '../ops/index.js';

export interface ForwardOptions {
  arch: string;
  /** The reference constructor's arguments in camelCase (a JSON object). */
  options: Record<string, unknown>;
  /** One path, a comma-separated list of shards, or a *.index.json. */
  weights: string;
  input: string;
  out: string;
  /** Training mode (batch statistics, dropout) instead of eval mode. */
  train?: boolean;
}

const FLOAT = new Set(['F16', 'BF16', 'F32', 'F64']);
const INT = new Set(['I8', 'I16', 'I32', 'I64', 'U8', 'U16', 'U32', 'U64', 'BOOL']);

/** Run the verb; returns the output's shape. */
export async function runForward(ctx: GpuContext, o: ForwardOptions): Promise<number[]> {
  const op = 'forward';
  const arch = architecture(o.arch, o.options);
  if (!existsSync(o.input)) throw new EngineError(op, `input file ${o.input} does not exist`);
  const weights = await loadSafetensorsShards(o.weights, { checkFinite: true });
  const input = await loadSafetensorsFile(o.input, { checkFinite: true });
  const records: SafetensorsTensor[] = arch.inputs.map((spec) => {
    const r = input.tensors.get(spec.name);
    if (!r) throw new EngineError(op, `${o.input} has no tensor '${spec.name}' (${o.arch} takes ${arch.inputs.map((i) => i.name).join(', ')})`);
    if (r.shape.length !== spec.rank)
      throw new EngineError(op, `input '${spec.name}' has shape [${r.shape.join(', ')}]; ${o.arch} takes rank ${spec.rank}`);
    if (spec.dtype === 'f32' && !FLOAT.has(r.dtype)) throw new EngineError(op, `input '${spec.name}' is ${r.dtype}; expected a float tensor`);
    if (spec.dtype === 'i32' && !INT.has(r.dtype)) throw new EngineError(op, `input '${spec.name}' is ${r.dtype}; expected an integer tensor`);
    return r;
  });
  const values = records.map((r, i) => (arch.inputs[i]!.dtype === 'f32' ? toFloat32(r) : toInt32(r, arch.inputs[i]!.name)));
  const model = arch.build(ctx, o.options);
  try {
    arch.checkInputs?.(model, new Map(arch.inputs.map((spec, i) => [spec.name, values[i]!])));
    model.loadStateDict(weights, { strict: true });
    model.train(!!o.train);
    const out = await ctx.scope(async () => {
      const xs: Tensor[] = records.map((r, i) =>
        arch.inputs[i]!.dtype === 'f32' ? tensor(ctx, values[i] as Float32Array, r.shape) : tensor(ctx, values[i] as Int32Array, r.shape, 'i32'),
      );
      const y = ctx.noGrad(() => (arch.forward ? arch.forward(model, xs, o.options) : (model.forward(...xs) as Tensor)));
      return { shape: [...y.shape], data: (await y.read()) as Float32Array };
    });
    await saveSafetensorsFile(o.out, new Map([['out', { dtype: 'F32', shape: out.shape, data: out.data }]]), {
      arch: o.arch,
      options: JSON.stringify(o.options),
      mode: o.train ? 'train' : 'eval',
      device: ctx.deviceName,
    });
    return out.shape;
  } finally {
    model.dispose();
  }
}
