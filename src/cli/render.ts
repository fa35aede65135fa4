/** Human renderings of results; --json prints the result objects as they are. */
import type { BuildResult, CleanResult, FailedStage } from '../build/runner.js';
import type { ImagesResult, PruneResult, UseRecord } from '../base/cache.js';
import type { ManyBuildResult } from '../build/multi.js';
import type { PlanResult } from '../build/plan.js';
import { formatBytes } from '../core/progress.js';
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

const useText = (u: UseRecord | null) => (u ? `${u.at} by build ${u.build} (${u.image})` : 'never recorded');

/** `images`: one block per image, then a count. */
export function renderImages(r: ImagesResult): string {
  const lines = r.images.flatMap((i) => [
    `${i.uuid}  ${i.name}@${i.version}  ${formatBytes(i.used)} used  ${i.createdByBuildimage ? 'installed by buildimage' : 'not created by buildimage (never pruned)'}`,
    `    installed ${i.installed}; last used ${useText(i.lastUsed)}${i.origin ? `; origin ${i.origin}` : ''}`,
    ...(i.originOf.length ? [`    origin of: ${i.originOf.map((d) => (d.kind === 'analog' ? `${d.dataset} (live analog, build ${d.build})` : `${d.dataset} (${d.kind})`)).join(', ')}`] : []),
  ]);
  return [...lines, `images: ${r.images.length} on ${r.datasetRoot}`].join('\n');
}

/** `prune`: one line per image and per -partial leftover, then what it freed. */
export function renderPrune(r: PruneResult): string {
  const verb = { destroy: r.dryRun ? 'would destroy' : 'destroyed', keep: 'kept', skip: 'skipped', failed: 'FAILED' } as const;
  const lines = [
    ...r.images.map((e) => `${verb[e.action]} ${e.uuid} (${e.name}@${e.version}, ${formatBytes(e.used)}): ${e.reason}`),
    ...r.partials.map((p) => `${verb[p.action]} ${p.dataset}: ${p.reason}`),
  ];
  const count = (a: string) => r.images.filter((e) => e.action === a).length;
  const destroyed = count('destroy');
  const summary = destroyed
    ? `prune: ${destroyed} image${destroyed > 1 ? 's' : ''} ${r.dryRun ? 'would be destroyed' : 'destroyed'}, ${formatBytes(r.freed)} ${r.dryRun ? 'to free' : 'freed'}`
    : 'prune: nothing to destroy';
  const rest = [`${count('keep')} kept`, ...(count('skip') ? [`${count('skip')} skipped`] : []), ...(count('failed') ? [`${count('failed')} failed`] : [])];
  return [...lines, `${summary}; ${rest.join(', ')} (keep days: ${r.keepDays})`].join('\n');
}

/** A multi-image build's last line: each image built and its image file. */
export function renderMany(r: ManyBuildResult): string {
  return r.images.map((i) => (i.result?.image ? `built image ${i.name} (${i.result.image.uuid}): ${i.result.image.outputs.image}` : `${i.name}: ${i.status}`)).join('\n');
}

/**
 * A multi-image build's timing table, one row per image (its stages'
 * seconds, its own total and how it ended), the run's wall-clock time
 * last; then one line per image that did not build, naming it.
 */
export function renderManyTimings(r: ManyBuildResult): void {
  const stages = [...new Set(r.images.flatMap((i) => [...Object.keys(i.timings), ...(i.failedStage ? [i.failedStage.stage] : [])]))];
  const width = Math.max(10, ...r.images.map((i) => i.name.length));
  const col = Math.max(8, ...stages.map((s) => s.length));
  const cells = (vals: string[]) => vals.map((v) => v.padStart(col)).join(' ');
  log.info(`${'image'.padEnd(width)} ${cells([...stages, 'total'])}  result`);
  for (const i of r.images) {
    const vals = stages.map((s) => (i.timings[s] !== undefined ? i.timings[s].toFixed(1) : i.failedStage?.stage === s ? `${i.failedStage.seconds.toFixed(1)}!` : '-'));
    const how = i.status === 'built' ? 'built' : i.failedStage ? `${i.status} at ${i.failedStage.stage}` : i.status;
    log.info(`${i.name.padEnd(width)} ${cells([...vals, i.seconds.toFixed(1)])}  ${how}`);
  }
  log.info(`${'wall clock'.padEnd(width)} ${cells([...stages.map(() => ''), r.seconds.toFixed(1)])}  ${r.jobs} at a time`);
  for (const i of r.images) if (i.status !== 'built') log.error(`image ${i.name} ${i.status}: ${i.error?.message ?? ''}`);
}

/** plan without --json: one row per image, what it needs. */
export function renderPlan(r: PlanResult): string {
  const rows = r.images.map((i) => [
    i.name,
    `${i.base.uuid}${i.base.name ? ` (${i.base.name}@${i.base.version})` : ''}`,
    i.packages.length ? `${i.packages.length} packages` : 'no packages',
    i.stem,
    i.estimatedBytes === undefined ? '?' : formatBytes(i.estimatedBytes),
  ]);
  const head = ['image', 'base', 'packages', 'output stem', 'size (est.)'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)));
  return [head, ...rows].map((row) => row.map((v, c) => v.padEnd(widths[c])).join('  ').trimEnd()).join('\n');
}
