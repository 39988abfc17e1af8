// ProgressBar output on a fake stream and clock: off a TTY, lines at the interval and each finished
// bar exactly once (with its summary); on a TTY, redraws in place and one final newline. No GPU.
import { describe, it, expect } from 'vitest';
import { ProgressBar, formatDuration, type ProgressStream } from '../src/nn/progress.js';

function fakeStream(tty: boolean): ProgressStream & { out: string[] } {
  const out: string[] = [];
  return { out, isTTY: tty, columns: 200, write: (s: string) => out.push(s) };
}

describe('ProgressBar', () => {
  it('non-TTY: one line per interval, the finished line once with its summary, nothing after finish', () => {
    const stream = fakeStream(false);
    let now = 0;
    const bar = new ProgressBar({ total: 10, label: 'epoch 1/2', stream, intervalSec: 10, now: () => now });
    for (let k = 1; k <= 10; k++) {
      now = k * 4000; // 4 s per step: due at steps 1, 4, 7 (10 s apart); step 10 is left to finish()
      bar.update(k, { loss: 1 / k, accuracy: k / 10, metrics: { gradNorm: 0.5 } });
    }
    bar.finish('test acc 91.00%');
    bar.finish('again');
    bar.update(10, { loss: 0 });
    const lines = stream.out.join('').split('\n').filter(Boolean);
    expect(stream.out.every((s) => s.endsWith('\n') && !s.includes('\r'))).toBe(true);
    expect(lines.map((l) => l.split(' ')[2])).toEqual(['1/10', '4/10', '7/10', '10/10']);
    expect(lines.filter((l) => l.includes('10/10'))).toEqual([
      'epoch 1/2 10/10 100% 0:40<0:00 loss 0.1000 acc 100.00% gradNorm 0.5000 test acc 91.00%',
    ]);
  });

  it('non-TTY: a run shorter than the interval prints its start and its end once each (the reported duplicate)', () => {
    const stream = fakeStream(false);
    let now = 0;
    const bar = new ProgressBar({ total: 3, label: 'eval', stream, now: () => now });
    for (let k = 1; k <= 3; k++) {
      now = k * 100;
      bar.update(k, { perSec: { value: 12.345, unit: 'steps' }, lr: 0.001 });
    }
    bar.finish();
    expect(stream.out).toEqual(['eval 1/3  33% 0:00<0:00 12.3 steps/s lr 0.00100\n', 'eval 3/3 100% 0:00<0:00 12.3 steps/s lr 0.00100\n']);
  });

  it('TTY: redraws in place at most every 100 ms, with a bar; finish ends the line once', () => {
    const stream = fakeStream(true);
    let now = 0;
    const bar = new ProgressBar({ total: 4, stream, now: () => now });
    for (const [t, k] of [[0, 1], [50, 2], [150, 3], [160, 4]]) {
      now = t!;
      bar.update(k!);
    }
    bar.finish('done');
    bar.finish('done');
    expect(stream.out.length).toBe(3); // steps 1 and 3, then finish
    expect(stream.out.every((s) => s.startsWith('\r\x1b[2K'))).toBe(true);
    expect(stream.out.filter((s) => s.endsWith('\n'))).toEqual([`\r\x1b[2K[${'#'.repeat(30)}] 4/4 100% 0:00<0:00 done\n`]);
    expect(stream.out[1]).toContain('3/4');
  });

  it('formatDuration', () => {
    expect([formatDuration(0), formatDuration(65), formatDuration(3903), formatDuration(NaN)]).toEqual(['0:00', '1:05', '1:05:03', '--:--']);
  });
});
