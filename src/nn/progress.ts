// A progress display for training loops: on a TTY one self-overwriting line with a bar, ETA, loss,
// accuracy, named metrics and a rate (redrawn at most every 100 ms); elsewhere (CI logs, files,
// browsers' consoles) plain lines at a fixed interval, the finished line written once, by finish().
// It computes nothing itself: callers pass the numbers.

/** Where the display writes; process.stderr in Node. */
export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressStats {
  loss?: number;
  /** In [0, 1]. */
  accuracy?: number;
  imagesPerSec?: number;
  /** A rate in other units than images, e.g. { value: 3.2, unit: 'steps' } shows '3.2 steps/s'. */
  perSec?: { value: number; unit: string };
  lr?: number;
  /** Further named values, shown as `name value` (4 significant digits). */
  metrics?: Record<string, number>;
}

export interface ProgressOptions {
  /** Units of work (steps) in the run. */
  total: number;
  /** Text before the bar, e.g. 'epoch 3/10'. */
  label?: string;
  /** Default: process.stderr when present, else nothing is written. */
  stream?: ProgressStream | null;
  /** Seconds between plain lines when the stream is not a TTY (default 10). */
  intervalSec?: number;
  /** Clock in milliseconds (default performance.now / Date.now); for tests. */
  now?: () => number;
}

const defaultStream = (): ProgressStream | null => {
  const p = (globalThis as { process?: { stderr?: ProgressStream } }).process;
  return p?.stderr ?? null;
};

/** "1:05:03" / "4:07" from seconds. */
export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return '--:--';
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`;
}

export class ProgressBar {
  readonly total: number;
  label: string;
  private readonly stream: ProgressStream | null;
  private readonly tty: boolean;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly start: number;
  private lastDraw = -Infinity;
  private done = 0;
  private stats: ProgressStats = {};
  private finished = false;

  constructor(opts: ProgressOptions) {
    this.total = Math.max(0, opts.total);
    this.label = opts.label ?? '';
    this.stream = opts.stream === undefined ? defaultStream() : opts.stream;
    this.tty = !!this.stream?.isTTY;
    this.intervalMs = (opts.intervalSec ?? 10) * 1000;
    this.now = opts.now ?? (() => (typeof performance !== 'undefined' ? performance.now() : Date.now()));
    this.start = this.now();
  }

  /**
   * Record progress (`done` units so far) and redraw when due. Off a TTY the completed state is not
   * written here: finish() writes it, once, with its summary.
   */
  update(done: number, stats: ProgressStats = {}): void {
    this.done = Math.min(done, this.total);
    this.stats = { ...this.stats, ...stats };
    if (this.finished || (!this.tty && this.done >= this.total)) return;
    const t = this.now();
    const due = this.tty ? t - this.lastDraw >= 100 : t - this.lastDraw >= this.intervalMs;
    if (due) {
      this.lastDraw = t;
      this.draw(false);
    }
  }

  /** Final line (always written), with an optional summary appended. */
  finish(summary = ''): void {
    if (this.finished) return;
    this.finished = true;
    this.draw(true, summary);
  }

  /** The text of the current line (without the bar when `bar` is false). */
  line(bar = this.tty): string {
    const elapsed = (this.now() - this.start) / 1000;
    const frac = this.total > 0 ? this.done / this.total : 1;
    const eta = this.done > 0 ? (elapsed * (this.total - this.done)) / this.done : NaN;
    const s = this.stats;
    const parts = [
      `${this.done}/${this.total}`,
      `${(100 * frac).toFixed(0).padStart(3)}%`,
      `${formatDuration(elapsed)}<${formatDuration(eta)}`,
      s.loss !== undefined ? `loss ${s.loss.toFixed(4)}` : '',
      s.accuracy !== undefined ? `acc ${(100 * s.accuracy).toFixed(2)}%` : '',
      ...Object.entries(s.metrics ?? {}).map(([k, v]) => `${k} ${v.toPrecision(4)}`),
      s.imagesPerSec !== undefined ? `${s.imagesPerSec.toFixed(1)} img/s` : '',
      s.perSec !== undefined ? `${s.perSec.value.toFixed(1)} ${s.perSec.unit}/s` : '',
      s.lr !== undefined ? `lr ${s.lr.toPrecision(3)}` : '',
    ].filter(Boolean);
    if (!bar) return [this.label, ...parts].filter(Boolean).join(' ');
    const width = Math.max(10, Math.min(30, (this.stream?.columns ?? 100) - [this.label, ...parts].join(' ').length - 4));
    const filled = Math.round(frac * width);
    const barText = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    return [this.label, barText, ...parts].filter(Boolean).join(' ');
  }

  private draw(final: boolean, summary = ''): void {
    if (!this.stream) return;
    const text = this.line() + (summary ? ` ${summary}` : '');
    if (this.tty) {
      const cols = this.stream.columns ?? 120;
      const clipped = text.length > cols - 1 ? text.slice(0, cols - 1) : text;
      this.stream.write(`\r\x1b[2K${clipped}${final ? '\n' : ''}`);
    } else this.stream.write(`${text}\n`);
  }
}
