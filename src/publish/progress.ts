/**
 * Upload progress with bytes and rate: a self-overwriting line on a TTY,
 * otherwise a log line every few seconds (Jenkins consoles are not TTYs,
 * and a silent 10-minute upload looks like a hang).
 */
import { log } from '../core/log.js';

export interface Progress {
  update(bytes: number): void;
  done(): void;
}

export type ProgressFactory = (label: string, total: number) => Progress;

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function formatRate(bytes: number, ms: number): string {
  return `${formatBytes(ms > 0 ? (bytes * 1000) / ms : bytes)}/s`;
}

export function progressReporter(opts: { tty?: boolean; intervalMs?: number; stream?: NodeJS.WriteStream } = {}): ProgressFactory {
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? !!stream.isTTY;
  const interval = opts.intervalMs ?? (tty ? 250 : 5000);
  return (label, total) => {
    const start = Date.now();
    let last = start;
    let bytes = 0;
    const line = (): string => {
      const pct = total > 0 ? ` ${((bytes * 100) / total).toFixed(0)}%` : '';
      return `${label}: ${formatBytes(bytes)} of ${formatBytes(total)}${pct}, ${formatRate(bytes, Date.now() - start)}`;
    };
    return {
      update(b) {
        bytes = b;
        const now = Date.now();
        if (now - last < interval) return;
        last = now;
        if (tty) stream.write(`\r\x1b[K${line()}`);
        else log.info(line());
      },
      done() {
        if (tty && last !== start) stream.write('\r\x1b[K');
      },
    };
  };
}
