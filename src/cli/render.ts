/** Human renderings of results; --json prints the result objects as they are. */
import type { BuildResult, CleanResult, FailedStage } from '../build/runner.js';
import type { DoctorResult } from '../setup/doctor.js';
import { GITIGNORE_ENTRIES, type InitResult } from '../setup/init.js';
import { log } from '../core/log.js';
import type { PackageCacheStats } from '../pkgsrc/mirror.js';

export function renderResult(r: BuildResult): string {
  if (r.image) {
    const o = r.image.outputs;
    return `built image ${r.image.uuid}: ${[o.image, o.manifest, o.packages, o.audit, o.auditJunit, o.buildInfo, o.provenance, o.contents, o.sbomCyclonedx, o.sbomSpdx].filter(Boolean).join(' ')}${r.lockfile ? `; package lock: ${r.lockfile}` : ''}`;
  }
  const last = r.completed[r.completed.length - 1];
  return `${last} done for build ${r.buildId}${r.stateFile ? ` (state: ${r.stateFile})` : ''}`;
}

/** The per-stage timing table every build command ends with, a failed stage included. */
export function renderTimings(timings: Record<string, number>, failed?: FailedStage, packageCache?: PackageCacheStats): void {
  const rows: Array<[string, number]> = Object.entries(timings);
  if (failed) rows.push([`${failed.stage} (${failed.interrupted ? 'interrupted' : 'failed'})`, failed.seconds]);
  if (!rows.length) return;
  const width = Math.max(10, ...rows.map(([n]) => n.length));
  const total = rows.reduce((a, [, s]) => a + s, 0);
  log.info(`${'stage'.padEnd(width)}  seconds`);
  for (const [stage, secs] of rows) log.info(`${stage.padEnd(width)} ${secs.toFixed(1).padStart(8)}`);
  log.info(`${'total'.padEnd(width)} ${total.toFixed(1).padStart(8)}`);
  if (packageCache) log.info(packageCacheLine(packageCache));
}

function mib(bytes: number): string {
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

/** Under the timing table: what pkgadd's packages cost, from the cache and from the network. */
export function packageCacheLine(c: PackageCacheStats): string {
  const extra = [c.dropped ? `${c.dropped} bad cached dropped` : '', c.evicted ? `${c.evicted} evicted` : ''].filter(Boolean);
  return `package cache: ${c.hits} hit${c.hits === 1 ? '' : 's'} (${mib(c.hitBytes)}), ${c.misses} miss${c.misses === 1 ? '' : 'es'} downloaded (${mib(c.missBytes)})${extra.length ? `, ${extra.join(', ')}` : ''}`;
}

export function renderClean(r: CleanResult): string {
  const parts = [
    `${r.destroyed.length} datasets destroyed`,
    `${r.unmounted.length} mounts removed`,
    `${r.removed.length} files/dirs removed`,
  ];
  if (r.skipped.length) parts.push(`${r.skipped.length} skipped (in use: ${r.skipped.join(', ')})`);
  if (r.kept.length) parts.push(`${r.kept.length} kept (kept or waiting for a stage, --include-kept removes them: ${r.kept.join(', ')})`);
  return `clean: ${parts.join(', ')}`;
}

/** One line per check, the fix under each one that is not fine, then a summary. */
export function renderDoctor(r: DoctorResult): string {
  const width = Math.max(...r.checks.map((c) => c.id.length));
  const lines = r.checks.flatMap((c) => {
    const head = `${(c.status === 'ok' ? 'ok' : c.status.toUpperCase()).padEnd(5)} ${c.id.padEnd(width)}  ${c.detail}`;
    return c.fix ? [head, `${' '.repeat(width + 8)}fix: ${c.fix}`] : [head];
  });
  const summary = r.failed
    ? `doctor: ${r.failed} check${r.failed > 1 ? 's' : ''} failed${r.warnings ? `, ${r.warnings} warning${r.warnings > 1 ? 's' : ''}` : ''}: builds will not work until fixed`
    : `doctor: ready${r.warnings ? ` (${r.warnings} warning${r.warnings > 1 ? 's' : ''})` : ''}`;
  return [...lines, summary].join('\n');
}

export function renderInit(r: InitResult): string {
  const wrote = r.written.map((p) => `  ${r.overwritten.includes(p) ? 'replaced' : 'wrote'} ${p}`);
  const g = r.gitignore;
  const ignore = g.skipped
    ? `  left ${g.path} alone (${g.skipped}): add ${GITIGNORE_ENTRIES.join(' and ')} to it yourself`
    : g.added.length
      ? `  added ${g.added.join(', ')} to ${g.path}`
      : undefined;
  const [config, proto] = r.edit;
  return [
    ...wrote,
    ...(ignore ? [ignore] : []),
    `next: edit ${config} (packages, description), put the image's files in ${proto}, then try it:`,
    ...r.next.map((c) => `  ${c}`),
  ].join('\n');
}
