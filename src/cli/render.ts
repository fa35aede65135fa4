/** Human renderings of results; --json prints the result objects as they are. */
import type { BuildResult, CleanResult } from '../build.js';
import { log } from '../log.js';

export function renderResult(r: BuildResult): string {
  if (r.image) {
    const o = r.image.outputs;
    return `built image ${r.image.uuid}: ${[o.image, o.manifest, o.packages, o.audit].filter(Boolean).join(' ')}`;
  }
  const last = r.completed[r.completed.length - 1];
  return `${last} done for build ${r.buildId}${r.stateFile ? ` (state: ${r.stateFile})` : ''}`;
}

export function renderTimings(r: BuildResult): void {
  const entries = Object.entries(r.timings);
  if (!entries.length) return;
  const total = entries.reduce((a, [, s]) => a + s, 0);
  log.info('stage       seconds');
  for (const [stage, secs] of entries) log.info(`${stage.padEnd(10)} ${secs.toFixed(1).padStart(8)}`);
  log.info(`${'total'.padEnd(10)} ${total.toFixed(1).padStart(8)}`);
}

export function renderClean(r: CleanResult): string {
  const parts = [
    `${r.destroyed.length} datasets destroyed`,
    `${r.unmounted.length} mounts removed`,
    `${r.removed.length} files/dirs removed`,
  ];
  if (r.skipped.length) parts.push(`${r.skipped.length} skipped (in use: ${r.skipped.join(', ')})`);
  return `clean: ${parts.join(', ')}`;
}
