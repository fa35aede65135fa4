/**
 * What a build owns, and a state file checked against it before anything
 * named in the file is removed, unmounted, killed or uploaded. A state file
 * is an input like any other (it travels between Jenkins stages, in a
 * workspace): the zone analog is only `<dataset root>/<build id>` carrying
 * this build's ZFS property, mounted where ZFS says; every path lies inside
 * the build's own dir, the analog's image root, or the output dir under the
 * names seal gives its files.
 */
import { randomBytes } from 'node:crypto';
import { lstat, realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { StateError } from '../core/errors.js';
import { ensureDir } from '../core/files.js';
import { zoneRoot } from '../core/layout.js';
import type { ChrootRecord } from '../host/chroot.js';
import { checkPrivateDir, resolveInside } from '../host/trusted.js';
import { BUILD_PROPERTY, type Zfs } from '../host/zfs.js';
import { fileSuffix } from '../image/compression.js';
import { PROVENANCE_SUFFIX } from '../provenance/envelope-file.js';
import { SBOM_SUFFIXES } from '../sbom/sbom.js';
import { layoutOf, type BuildDefinition, type BuildState, type Outputs } from './state.js';

/**
 * On zone analogs: where a build stands, for `clean --all`. Unset or
 * `running`: a stage is at work (a held build lock) or was killed (none);
 * `waiting`: between discrete stages, its next one still to come; `kept`:
 * failed and kept for inspection (--keep-on-failure). Only ZFS's word
 * counts here, never a state file's.
 */
export const PHASE_PROPERTY = 'com.tritondatacenter.buildimage:phase';
export type Phase = 'running' | 'waiting' | 'kept';

/** Builds `clean --all` leaves alone unless given --include-kept. */
export function isKeptPhase(value: string): boolean {
  return value === 'waiting' || value === 'kept';
}

export function outputPaths(def: BuildDefinition): Outputs {
  const stem = join(def.outputDir, `${def.prefix}-${def.manifest.version}`);
  return {
    image: stem + fileSuffix(def.compression),
    manifest: `${stem}.imgmanifest`,
    packages: `${stem}.packages.json`,
    buildInfo: `${stem}.build-info.json`,
    provenance: stem + PROVENANCE_SUFFIX,
    contents: `${stem}.contents.json.gz`,
    sbomCyclonedx: stem + SBOM_SUFFIXES.cyclonedx,
    sbomSpdx: stem + SBOM_SUFFIXES.spdx,
    ...(def.audit ? { audit: `${stem}.pkgaudit`, auditJunit: `${stem}.audit.junit.xml` } : {}),
  };
}

const partialTag = (buildId: string) => `.partial-${buildId.slice(0, 8)}`;

/** Seal's temp name for an output: hidden, this build's, and not guessable (a shared /tmp). */
export function sealTempPath(output: string, buildId: string): string {
  return join(dirname(output), `.${basename(output)}${partialTag(buildId)}-${randomBytes(6).toString('hex')}`);
}

/** A name sealTempPath gives (or gave, before its random part) for one of this build's outputs. */
function isSealTempName(name: string, def: BuildDefinition, buildId: string): boolean {
  return Object.values(outputPaths(def)).some((o) => {
    const stem = `.${basename(o)}${partialTag(buildId)}`;
    return name === stem || (name.startsWith(`${stem}-`) && /^[0-9a-f]{12}$/.test(name.slice(stem.length + 1)));
  });
}

/** The work dir's parts buildimage relies on, for checkPrivateDir. */
export function workDirParts(buildId?: string): string[] {
  return ['locks', 'builds', 'states', ...(buildId ? [join('builds', buildId)] : [])];
}

export function checkWorkDir(workDir: string, buildId?: string): Promise<void> {
  return checkPrivateDir(workDir, { what: 'work dir', hint: 'use a directory only root can write: remove it, or pass another --work-dir', subdirs: workDirParts(buildId) });
}

/**
 * Makes the work dir and its shared parts, 0755 whatever the umask (a umask
 * of 002 would make them group-writable, and refused next time), and checks
 * them before and after: nobody slips one in between.
 */
export async function makeWorkDir(workDir: string): Promise<void> {
  await checkWorkDir(workDir);
  for (const part of ['', ...workDirParts()]) await ensureDir(join(workDir, part), { what: 'work directory', flag: '--work-dir' });
  await checkWorkDir(workDir);
}

export interface Owned {
  /** The analog when it exists and is this build's, mounted where ZFS says. */
  analog?: { dataset: string; mountpoint: string };
  /** The image root that chroot teardown and process killing work under. */
  root: string;
  /** The state's chroot record, every path resolved inside `root`. */
  chroot: ChrootRecord;
  /** The state's temp files, resolved inside the output dir. */
  tempFiles: string[];
  buildDir: string;
}

function notOurs(state: BuildState, what: string, path: string, why: string): StateError {
  return new StateError(
    `state file of build ${state.buildId} names ${what} ${path}, which this build does not own (${why}); nothing was done`,
    'a state file changed by hand or by someone else is not acted on: clean up with `buildimage clean --all`',
  );
}

/**
 * Checks every resource a state names against what the build owns; throws
 * one StateError before anything is touched.
 */
export async function checkOwned(zfs: Zfs, state: BuildState): Promise<Owned> {
  const id = state.buildId;
  const layout = layoutOf(state);
  await checkWorkDir(layout.workDir, id);
  const buildDir = layout.buildDir(id);
  const mountpoint = layout.zoneMountpoint(id);
  let analog: Owned['analog'];
  if (state.analog) {
    const dataset = layout.analogDataset(id);
    if (state.analog.dataset !== dataset) throw notOurs(state, 'zone analog', state.analog.dataset, `its analog is ${dataset}`);
    if (state.analog.mountpoint !== mountpoint) throw notOurs(state, 'analog mountpoint', state.analog.mountpoint, `its analog is mounted at ${mountpoint}`);
    if (await zfs.exists(dataset)) {
      if ((await zfs.getOne(dataset, BUILD_PROPERTY)) !== id) throw notOurs(state, 'zone analog', dataset, `it does not carry build ${id}'s ZFS property`);
      const zfsMountpoint = await zfs.getOne(dataset, 'mountpoint');
      if (zfsMountpoint !== mountpoint) throw notOurs(state, 'analog mountpoint', mountpoint, `ZFS mounts ${dataset} at ${zfsMountpoint}`);
      analog = { dataset, mountpoint: zfsMountpoint };
    }
  }
  if (state.originView) {
    const want = layout.originView(id);
    if (state.originView.dataset !== want.dataset) throw notOurs(state, 'origin clone', state.originView.dataset, `its origin clone is ${want.dataset}`);
    if (state.originView.mountpoint !== want.mountpoint) throw notOurs(state, 'origin clone mountpoint', state.originView.mountpoint, `its origin clone is mounted at ${want.mountpoint}`);
  }
  const root = zoneRoot(mountpoint);
  const inRoot = async (what: string, paths: string[]) => {
    const out: string[] = [];
    for (const p of paths) {
      const r = await resolveInside(root, p);
      if (!r) throw notOurs(state, what, p, `not inside the image root ${root}`);
      out.push(r);
    }
    return out;
  };
  const chroot = { mounts: await inRoot('chroot mount', state.chroot.mounts), createdDirs: await inRoot('chroot mountpoint dir', state.chroot.createdDirs) };
  const tempFiles: string[] = [];
  if (state.tempFiles.length) {
    const outDir = state.definition.outputDir;
    const realOut = await realpath(outDir).catch(() => outDir);
    for (const t of state.tempFiles) {
      const r = await resolveInside(outDir, t);
      if (!r || dirname(r) !== realOut) throw notOurs(state, 'temp file', t, `not directly in the output dir ${outDir}`);
      if (!isSealTempName(basename(r), state.definition, id)) throw notOurs(state, 'temp file', t, 'not a name seal gives its temp files');
      tempFiles.push(r);
    }
  }
  return { analog, root, chroot, tempFiles, buildDir };
}

/**
 * A sealed build's outputs, for publish: each exactly where seal puts it
 * (the output dir, seal's names), a regular file, not a link.
 */
export async function checkedOutputs(state: BuildState): Promise<string[]> {
  const want = outputPaths(state.definition) as Record<string, string | undefined>;
  const outDir = state.definition.outputDir;
  const realOut = await realpath(outDir).catch(() => outDir);
  const out: string[] = [];
  for (const [key, p] of Object.entries(state.outputs ?? {}) as [string, string | undefined][]) {
    if (!p) continue;
    if (p !== want[key]) throw notOurs(state, `output (${key})`, p, `seal writes it as ${want[key] ?? 'nothing'}`);
    const r = await resolveInside(outDir, p);
    if (!r || dirname(r) !== realOut) throw notOurs(state, `output (${key})`, p, `not directly in the output dir ${outDir}`);
    const st = await lstat(r).catch(() => undefined);
    if (st && !st.isFile()) throw notOurs(state, `output (${key})`, p, st.isSymbolicLink() ? 'it is a symlink' : 'not a regular file');
    out.push(r);
  }
  return out;
}
