// GPU buffer pool keyed by size class. A released buffer is parked with the submit that last could
// use it and returns to the free lists only once the GPU reports that submit done, so a later
// queue.writeBuffer into a recycled buffer can never race a kernel still reading it. Each new GPU
// buffer is created inside an 'out-of-memory' error scope (reuses are not: a scope costs about as
// much CPU as the createBuffer itself on lavapipe); a buffer the device could not allocate is
// reported through `onOutOfMemory` and destroyed, never recycled, when released.
// It does not zero buffers (contents of an acquired buffer are undefined) and does not check limits
// (GpuContext.allocate does, before calling acquire).

import { BufferUsage } from './flags.js';

const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

/** Size classes grow by 2^(1/4) (about 19% worst-case slack) from 256 bytes. */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const k = Math.ceil(Math.log2(bytes) * 4) / 4;
  // round up to a multiple of 256 so classes are stable integers
  return Math.ceil(Math.pow(2, k) / 256) * 256;
}

export interface PoolStats {
  /** buffers handed out and not yet released */
  liveBuffers: number;
  liveBytes: number;
  /** buffers released but waiting for the GPU to finish with them */
  pendingBuffers: number;
  pendingBytes: number;
  /** buffers idle in the free lists */
  freeBuffers: number;
  freeBytes: number;
  /** total GPU buffers this pool ever created */
  created: number;
  /** buffers the device failed to allocate (out-of-memory scope errors) */
  outOfMemory: number;
}

export interface BufferPoolOptions {
  /** The device's maxBufferSize: a size class above it falls back to the exact size (4-byte aligned). */
  maxBufferSize?: number;
  /**
   * Called (asynchronously, once the error scope resolves) when creating a buffer ran out of memory.
   * `describe(site)` names what was being allocated; `site` is the Error captured at creation.
   */
  onOutOfMemory?: (bytes: number, message: string) => void;
}

/** Names what an allocation is for, given the stack captured when its GPU buffer was created. */
export type AllocationLabel = (site: Error) => string;

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private parked: GPUBuffer[] = [];
  private live = new Set<GPUBuffer>();
  /** buffers whose creation failed with out-of-memory: never recycled */
  private failed = new WeakSet<GPUBuffer>();
  private liveBytes = 0;
  private pendingCount = 0;
  private pendingBytes = 0;
  private freeCount = 0;
  private freeBytes = 0;
  private created = 0;
  private outOfMemory = 0;
  private readonly maxBufferSize: number;

  private poisonBits: number | null = null;
  /** error scopes of new buffers not yet popped */
  private scopes = new Set<Promise<unknown>>();

  constructor(
    private readonly device: GPUDevice,
    private readonly options: BufferPoolOptions = {},
  ) {
    this.maxBufferSize = options.maxBufferSize ?? Infinity;
  }

  /**
   * Testing aid: fill every acquired buffer with this 32-bit pattern (e.g. 0x7fc00000, a NaN) so a
   * kernel that leaves part of its output unwritten is caught. null turns it off.
   */
  setPoison(bits: number | null): void {
    this.poisonBits = bits;
  }

  /** The byte size of the GPU buffer that holds `bytes`: its size class, or the exact size near maxBufferSize. */
  bufferSize(bytes: number): number {
    const size = sizeClass(bytes);
    return size <= this.maxBufferSize ? size : Math.ceil(bytes / 4) * 4;
  }

  /** A buffer of at least `bytes`; `label` names the allocation if the device runs out of memory. */
  acquire(bytes: number, label?: AllocationLabel): GPUBuffer {
    const size = this.bufferSize(bytes);
    const list = this.free.get(size);
    let buf = list?.pop();
    while (buf && this.failed.has(buf)) {
      // its out-of-memory report arrived after it was recycled
      this.freeCount--;
      this.freeBytes -= size;
      buf.destroy();
      buf = list!.pop();
    }
    if (buf) {
      this.freeCount--;
      this.freeBytes -= size;
    } else {
      buf = this.create(size, label);
    }
    this.live.add(buf);
    this.liveBytes += size;
    if (this.poisonBits !== null) {
      // safe with writeBuffer: a buffer in the free lists is used by no pending command
      this.device.queue.writeBuffer(buf, 0, new Uint32Array(size / 4).fill(this.poisonBits));
    }
    return buf;
  }

  private create(size: number, label?: AllocationLabel): GPUBuffer {
    const site = new Error(); // the stack only, formatted if the allocation fails
    this.device.pushErrorScope('out-of-memory');
    const buf = this.device.createBuffer({ size, usage: STORAGE_USAGE });
    this.created++;
    const popped = this.device.popErrorScope().then(
      (err) => {
        this.scopes.delete(popped);
        if (!err) return;
        this.failed.add(buf);
        this.outOfMemory++;
        const what = label ? label(site) : 'a buffer';
        this.options.onOutOfMemory?.(size, `out of GPU memory allocating ${what} (${size} bytes): ${err.message}`);
      },
      () => {
        this.scopes.delete(popped); // the scope cannot be popped on a lost device: the loss is reported instead
      },
    );
    this.scopes.add(popped);
    return buf;
  }

  /** Resolves once the error scopes of every buffer created so far have reported. */
  async settled(): Promise<void> {
    if (this.scopes.size) await Promise.all([...this.scopes]);
  }

  /** Give a buffer back; it becomes reusable after the next submit completes. */
  release(buf: GPUBuffer): void {
    if (!this.live.delete(buf)) throw new Error('BufferPool.release: buffer is not live (released twice?)');
    this.liveBytes -= buf.size;
    if (this.failed.has(buf)) {
      buf.destroy(); // an invalid buffer: never handed out again
      return;
    }
    this.parked.push(buf);
    this.pendingCount++;
    this.pendingBytes += buf.size;
  }

  /**
   * Called by the context right after a submit: buffers parked so far wait for `done`
   * (the queue's onSubmittedWorkDone for that submit), then join the free lists.
   */
  afterSubmit(done: Promise<unknown>): void {
    if (this.parked.length === 0) return;
    const batch = this.parked;
    this.parked = [];
    void done.then(
      () => this.recycle(batch),
      () => this.recycle(batch),
    );
  }

  private recycle(batch: GPUBuffer[]): void {
    for (const b of batch) {
      this.pendingBytes -= b.size;
      if (this.failed.has(b)) {
        b.destroy();
        continue;
      }
      let list = this.free.get(b.size);
      if (!list) this.free.set(b.size, (list = []));
      list.push(b);
      this.freeCount++;
      this.freeBytes += b.size;
    }
    this.pendingCount -= batch.length;
  }

  /** Destroy idle buffers (for example after a large one-off computation, or out of memory). */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.freeCount = 0;
    this.freeBytes = 0;
  }

  stats(): PoolStats {
    return {
      liveBuffers: this.live.size,
      liveBytes: this.liveBytes,
      pendingBuffers: this.pendingCount,
      pendingBytes: this.pendingBytes,
      freeBuffers: this.freeCount,
      freeBytes: this.freeBytes,
      created: this.created,
      outOfMemory: this.outOfMemory,
    };
  }
}
