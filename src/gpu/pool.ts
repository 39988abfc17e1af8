// GPU buffer pool keyed by size class. A released buffer is parked with the submit that last could
// use it and returns to the free lists only once the GPU reports that submit done, so a later
// queue.writeBuffer into a recycled buffer can never race a kernel still reading it.
// It does not zero buffers: contents of an acquired buffer are undefined.

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
  /** buffers idle in the free lists */
  freeBuffers: number;
  freeBytes: number;
  /** total GPU buffers this pool ever created */
  created: number;
}

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private parked: GPUBuffer[] = [];
  private live = new Set<GPUBuffer>();
  private liveBytes = 0;
  private pendingCount = 0;
  private freeCount = 0;
  private freeBytes = 0;
  private created = 0;

  private poisonBits: number | null = null;

  constructor(private readonly device: GPUDevice) {}

  /**
   * Testing aid: fill every acquired buffer with this 32-bit pattern (e.g. 0x7fc00000, a NaN) so a
   * kernel that leaves part of its output unwritten is caught. null turns it off.
   */
  setPoison(bits: number | null): void {
    this.poisonBits = bits;
  }

  acquire(bytes: number): GPUBuffer {
    const size = sizeClass(bytes);
    const list = this.free.get(size);
    let buf = list?.pop();
    if (buf) {
      this.freeCount--;
      this.freeBytes -= size;
    } else {
      buf = this.device.createBuffer({ size, usage: STORAGE_USAGE });
      this.created++;
    }
    this.live.add(buf);
    this.liveBytes += size;
    if (this.poisonBits !== null) {
      // safe with writeBuffer: a buffer in the free lists is used by no pending command
      this.device.queue.writeBuffer(buf, 0, new Uint32Array(size / 4).fill(this.poisonBits));
    }
    return buf;
  }

  /** Give a buffer back; it becomes reusable after the next submit completes. */
  release(buf: GPUBuffer): void {
    if (!this.live.delete(buf)) throw new Error('BufferPool.release: buffer is not live (released twice?)');
    this.liveBytes -= buf.size;
    this.parked.push(buf);
    this.pendingCount++;
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
      let list = this.free.get(b.size);
      if (!list) this.free.set(b.size, (list = []));
      list.push(b);
      this.freeCount++;
      this.freeBytes += b.size;
    }
    this.pendingCount -= batch.length;
  }

  /** Destroy idle buffers (for example after a large one-off computation). */
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
      freeBuffers: this.freeCount,
      freeBytes: this.freeBytes,
      created: this.created,
    };
  }
}
