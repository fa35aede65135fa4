/**
 * Progress of long steps (download, copy, pkg_add, send/compress, upload):
 * amount, rate and, when the total is known, percentage and ETA. On a TTY
 * it is one self-overwriting line; otherwise (Jenkins consoles are not
 * TTYs, and a silent ten-minute step looks like a hang) a log line every
 * few seconds, as fields of the log record with --log-format json.
 *
 *   const p = startProgress('send', { unit: 'bytes', total });
 *   stream.on('data', (c) => p.update(sent += c.length));
 *   ...
 *   p.done();
 */
import { liveLineAllowed, log, setLiveLine } from './log.js';

export type ProgressUnit = 'bytes' | 'files' | 'lines';

export interface ProgressOptions {
  /** What `update(n)` counts (default bytes). */
  unit?: ProgressUnit;
  /** Expected final count, for percentage and ETA. */
  total?: number;
  /** Non-TTY: at most one line per this many ms (default 5000). */
  everyMs?: number;
  /** Also report when nothing changed (commands that go quiet for minutes), every `everyMs`. */
  heartbeat?: boolean;
  /** Force the TTY live line on or off (default: a TTY stderr with human logs). */
  live?: boolean;
}

export interface ProgressExtra {
  /** Bytes, when the unit is files. */
  bytes?: number;
  /** Free text shown last, e.g. the last output line. */
  note?: string;
}

export interface Progress {
  /** The running count so far (not an increment). */
  update(count: number, extra?: ProgressExtra): void;
  /** Removes the live line. Call on success and failure alike. */
  done(): void;
}

const LIVE_EVERY_MS = 200;

/**
 * Bytes in decimal units, as the rest of the tool prints them: MB (1e6)
 * from one MB up (no GB: image sizes read best in one unit), kB and B below.
 */
export function formatBytes(n: number): string {
  if (n >= 999_950) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 999.5) return `${(n / 1e3).toFixed(1)} kB`;
  return `${Math.round(n)} B`;
}

export function formatRate(bytes: number, secs: number): string {
  return `${formatBytes(secs > 0 ? bytes / secs : 0)}/s`;
}

export function formatProgress(done: number, total: number | undefined, secs: number): string {
  const rate = secs > 0 ? done / secs : 0;
  const parts = [total ? `${formatBytes(done)} of ${formatBytes(total)} (${Math.floor((done / total) * 100)}%)` : formatBytes(done), formatRate(done, secs)];
  if (total && rate > 0 && done < total) parts.push(`ETA ${Math.ceil((total - done) / rate)}s`);
  return parts.join(', ');
}

function describe(unit: ProgressUnit, count: number, total: number | undefined, extra: ProgressExtra, secs: number): string {
  const parts: string[] = [];
  if (unit === 'bytes') parts.push(formatProgress(count, total, secs));
  else if (unit === 'files') {
    parts.push(`${count}${total ? ` of ${total}` : ''} files`);
    if (extra.bytes !== undefined) parts.push(`${formatBytes(extra.bytes)}, ${formatRate(extra.bytes, secs)}`);
  } else parts.push(`${Math.round(secs)}s, ${count} lines of output`);
  if (extra.note) parts.push(extra.note.length > 80 ? `${extra.note.slice(0, 79)}…` : extra.note);
  return parts.join(', ');
}

export function startProgress(label: string, opts: ProgressOptions = {}): Progress {
  const unit = opts.unit ?? 'bytes';
  const everyMs = opts.everyMs ?? 5000;
  const live = opts.live ?? liveLineAllowed();
  const start = Date.now();
  let last = start;
  let count = 0;
  let extra: ProgressExtra = {};
  let finished = false;

  const emit = (now: number): void => {
    last = now;
    const secs = (now - start) / 1000;
    const text = `${label}: ${describe(unit, count, opts.total, extra, secs)}`;
    if (live) {
      setLiveLine(text);
      return;
    }
    const fields: Record<string, unknown> = { progress: label.trim(), unit, count, seconds: Number(secs.toFixed(1)) };
    if (opts.total !== undefined) fields.total = opts.total;
    if (extra.bytes !== undefined) fields.bytes = extra.bytes;
    log.info(text, fields);
  };

  // Live: redraw each second so the elapsed time moves; logs: every `everyMs`.
  const beat = live ? 1000 : everyMs;
  const timer = opts.heartbeat
    ? setInterval(() => {
        const now = Date.now();
        if (now - last >= beat - 50) emit(now);
      }, beat)
    : undefined;
  timer?.unref();

  return {
    update(n, more) {
      if (finished) return;
      count = n;
      if (more) extra = { ...extra, ...more };
      const now = Date.now();
      if (now - last < (live ? LIVE_EVERY_MS : everyMs)) return;
      emit(now);
    },
    done() {
      if (finished) return;
      finished = true;
      if (timer) clearInterval(timer);
      if (live) setLiveLine(undefined);
    },
  };
}

/**
 * The callback form the image sources take (`onProgress(bytes)`). Returns
 * a function taking the running byte count.
 */
export function byteProgress(label: string, total?: number, everyMs = 5000): (bytes: number) => void {
  const p = startProgress(label, { unit: 'bytes', total, everyMs });
  return (bytes: number) => {
    p.update(bytes);
    if (total !== undefined && bytes >= total) p.done();
  };
}
