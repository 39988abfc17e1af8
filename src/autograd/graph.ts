// Reverse-mode autograd: ops record a GradNode on their output; backward() sorts the graph
// topologically and sweeps it in reverse, accumulating gradients so shared subgraphs (residual
// connections, a tensor used twice) sum correctly. It knows no op: rules live beside their kernels.

import { EngineError } from '../gpu/context.js';
import { Tensor, type GradNode } from './tensor.js';
import { sameShape, shapeStr } from './shape.js';
import { add } from '../wgsl/elementwise.js';
import { full } from '../wgsl/fill.js';

/**
 * Attach a backward rule to `out` when gradients are enabled and some input requires them.
 * Returns `out` for chaining.
 */
export function record(out: Tensor, op: string, inputs: Tensor[], backward: GradNode['backward']): Tensor {
  if (!out.ctx.gradEnabled || !inputs.some((t) => t.requiresGrad)) return out;
  out.requiresGrad = true;
  out.node = { op, inputs, backward };
  return out;
}

/** A new tensor object sharing `t`'s storage with another shape (no copy, no graph). */
export function view(t: Tensor, shape: readonly number[] = t.shape): Tensor {
  return new Tensor(t.ctx, shape, t.dtype, t);
}

/** Same data, cut from the graph. */
export function detach(t: Tensor): Tensor {
  return view(t);
}

/** Mark a tensor as a leaf that accumulates .grad. Returns it. */
export function requireGrad(t: Tensor, on = true): Tensor {
  if (on && t.dtype !== 'f32') throw new EngineError('requireGrad', `${t.describe()} is not floating point`);
  t.requiresGrad = on;
  return t;
}

/** Op outputs whose graph an earlier backward() swept (a second backward through them is an error). */
const swept = new WeakSet<Tensor>();

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i]!;
      if (swept.has(c))
        throw new EngineError('backward', `part of the graph (${c.describe()}) was freed by an earlier backward(); run the forward again`);
      if (c.requiresGrad && !seen.has(c)) {
        seen.add(c);
        stack.push([c, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order; // inputs before outputs
}

/**
 * Back-propagate from `root`. A scalar root gets d(root) = 1; otherwise pass `dRoot` of the same
 * shape. Leaves with requiresGrad accumulate into `.grad` (kept outside any scope); the graph is
 * freed as it is swept, so backward runs once per forward.
 */
export function backward(root: Tensor, dRoot?: Tensor): void {
  const ctx = root.ctx;
  if (!root.requiresGrad) throw new EngineError('backward', `${root.describe()} does not require grad (no recorded graph)`);
  if (dRoot) {
    if (!sameShape(dRoot.shape, root.shape))
      throw new EngineError('backward', `output gradient ${shapeStr(dRoot.shape)} does not match output ${shapeStr(root.shape)}`);
  } else if (root.size !== 1) {
    throw new EngineError('backward', `${root.describe()} is not a scalar; pass its output gradient`);
  }
  if (swept.has(root)) throw new EngineError('backward', `the graph of ${root.describe()} was freed by an earlier backward(); run the forward again`);
  const order = topoOrder(root);
  ctx.noGrad(() =>
    ctx.scope(() => {
      const grads = new Map<Tensor, Tensor>();
      grads.set(root, dRoot ? view(dRoot) : full(ctx, root.shape, 1));
      const accumulate = (t: Tensor, g: Tensor) => {
        const prev = grads.get(t);
        if (!prev) grads.set(t, g);
        else {
          grads.set(t, add(prev, g));
          prev.dispose();
          g.dispose();
        }
      };
      for (let k = order.length - 1; k >= 0; k--) {
        const t = order[k]!;
        const g = grads.get(t);
        if (!g) continue;
        grads.delete(t);
        const node = t.node;
        if (!node) {
          // a leaf: keep its gradient beyond this scope
          ctx.keep(g);
          if (t.grad) {
            const sum = ctx.keep(add(t.grad, g));
            t.grad.dispose();
            g.dispose();
            t.grad = sum;
          } else t.grad = g;
          continue;
        }
        const gins = node.backward(g);
        const returned = new Set<Tensor>();
        node.inputs.forEach((inp, i) => {
          let gi = gins[i] ?? null;
          if (!gi || !inp.requiresGrad) return;
          if (gi === g || returned.has(gi)) gi = view(gi);
          returned.add(gi);
          if (!sameShape(gi.shape, inp.shape))
            throw new EngineError(node.op, `backward produced ${shapeStr(gi.shape)} for input ${i} of shape ${shapeStr(inp.shape)}`);
          accumulate(inp, gi);
        });
        g.dispose();
        t.node = null; // free the graph as we go
        swept.add(t);
      }
    }),
  );
}
