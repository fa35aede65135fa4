/**
 * Progress of long byte or file counts (download, copy, send, upload): a
 * line every few seconds with amount, rate and, when the total is known,
 * percentage and ETA.
 */
import { log } from './log.js';

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

export function formatProgress(done: number, total: number | undefined, secs: number): string {
  const rate = secs > 0 ? done / secs : 0;
  const parts = [total ? `${mb(done)} of ${mb(total)} (${Math.floor((done / total) * 100)}%)` : mb(done), `${mb(rate)}/s`];
  if (total && rate > 0 && done < total) parts.push(`ETA ${Math.ceil((total - done) / rate)}s`);
  return parts.join(', ');
}

/** Returns a callback taking the running byte count; logs at most every `everyMs`. */
export function byteProgress(label: string, total?: number, everyMs = 5000): (bytes: number) => void {
  const start = Date.now();
  let last = start;
  return (bytes: number) => {
    const now = Date.now();
    if (now - last < everyMs) return;
    last = now;
    log.info(`${label}: ${formatProgress(bytes, total, (now - start) / 1000)}`);
  };
}
