// Reverse-mode sweep: backward() sorts the recorded graph topologically and runs each node's rule
// in reverse, summing the gradients of tensors used more than once (residual connections) in place
// with one small kernel of its own, so the engine depends on no op. The graph is freed as it goes.
// It does not do higher-order gradients (backward runs under noGrad) or non-f32 gradients.

import { EngineError } from '../util/errors.js';
import { Tensor } from './tensor.js';
import { view } from './graph.js';
import { sameShape, shapeStr } from './shape.js';

const WG = 64;

/** acc += g over contiguous f32 arrays of the same length (the engine owns acc: in place is safe). */
const ACCUMULATE_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> acc: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<uniform> n: vec4<u32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * (nwg.x * ${WG}u);
  if (i < n.x) { acc[i] = acc[i] + g[i]; }
}`;

function accumulateInto(acc: Tensor, g: Tensor): void {
  if (acc.size === 0) return;
  const groups = Math.ceil(acc.size / WG);
  const y = Math.ceil(groups / 65535);
  acc.ctx.dispatch({
    op: 'backward.accumulate',
    key: 'autograd:accumulate',
    code: () => ACCUMULATE_WGSL,
    buffers: [acc.binding('backward'), g.binding('backward')],
    uniforms: new Uint32Array([acc.size, 0, 0, 0]).buffer,
    workgroups: [Math.ceil(groups / y), y, 1],
  });
}

/** A gradient tensor the engine owns (a private copy when `g` may be shared with someone else). */
function ownedCopy(g: Tensor): Tensor {
  const c = new Tensor(g.ctx, g.shape, 'f32');
  g.ctx.copyBuffer(g.buffer('backward'), 0, c.buffer('backward'), 0, g.bytes);
  return c;
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
      if (dRoot) grads.set(root, view(dRoot));
      else {
        const one = new Tensor(ctx, root.shape, 'f32');
        ctx.upload(one.buffer('backward'), Float32Array.of(1));
        grads.set(root, one);
      }
      // gradients the engine may add into in place (fresh outputs of backward rules it alone holds)
      const owned = new Set<Tensor>();
      const accumulate = (t: Tensor, g: Tensor, fresh: boolean) => {
        const prev = grads.get(t);
        if (!prev) {
          grads.set(t, g);
          if (fresh) owned.add(g);
          return;
        }
        // add into whichever of the two the engine owns; copy only when it owns neither
        let acc = prev;
        let other = g;
        if (!owned.has(prev)) {
          acc = fresh ? g : ownedCopy(prev);
          other = fresh ? prev : g;
          if (!fresh) prev.dispose();
          owned.add(acc);
          grads.set(t, acc);
        }
        accumulateInto(acc, other);
        other.dispose();
      };
      for (let k = order.length - 1; k >= 0; k--) {
        const t = order[k]!;
        const g = grads.get(t);
        if (!g) continue;
        grads.delete(t);
        const node = t.node;
        if (!node) {
          // a leaf: keep its gradient beyond this scope
          if (t.grad) {
            // .grad belongs to the leaf (the user may hold it): add into it in place
            accumulateInto(t.grad, g);
            g.dispose();
          } else t.grad = ctx.keep(owned.has(g) ? g : ownedCopy(g));
          if (t.grad !== g && !g.disposed) g.dispose();
          continue;
        }
        const gins = node.backward(g);
        const returned = new Set<Tensor>();
        node.inputs.forEach((inp, i) => {
          let gi = gins[i] ?? null;
          if (!gi || !inp.requiresGrad) return;
          // a rule may pass its output gradient through (identity) or return one tensor twice:
          // such gradients are views, never added into in place
          const fresh = gi !== g && !returned.has(gi) && !gi.sharesStorage(g);
          if (!fresh) gi = view(gi);
          returned.add(gi);
          if (!sameShape(gi.shape, inp.shape))
            throw new EngineError(node.op, `backward produced ${shapeStr(gi.shape)} for input ${i} of shape ${shapeStr(inp.shape)}`);
          accumulate(inp, gi, fresh);
        });
        g.dispose();
        t.node = null; // free the graph as we go
        swept.add(t);
      }
    }),
  );
}
