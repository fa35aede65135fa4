/**
 * The state file: the build definition and everything a build created, so
 * that discrete stages (separate processes in a Jenkinsfile) can continue a
 * build and `clean` can undo it. Resources are recorded *before* they are
 * created, so even a kill -9 leaves a list to clean from. Written atomically,
 * 0600; read only from a file no other user could have written, and even
 * then every path in it is checked before it is acted on (build/owned).
 */
import { randomUUID } from 'node:crypto';
import { lstat, readFile } from 'node:fs/promises';
import { z } from 'zod';
import { StateError } from '../core/errors.js';
import { writeAtomic } from '../core/files.js';
import { Layout } from '../core/layout.js';
import { lockHeld, readLock } from '../host/lock.js';
import { untrustedFile } from '../host/trusted.js';
import { PackageLockSchema } from '../pkgsrc/lock.js';
import { PackageCacheStatsSchema } from '../pkgsrc/mirror.js';
import { DefinitionSchema, recordedDefinition, type BuildDefinition } from '../settings/definition.js';

export const STAGES = ['prepare', 'assemble', 'pkgadd', 'seal'] as const;
export type StageName = (typeof STAGES)[number];
export type { BuildDefinition };

const OutputsSchema = z.object({
  image: z.string(),
  manifest: z.string(),
  packages: z.string().optional(),
  audit: z.string().optional(),
  /** The audit as JUnit XML, for Jenkins' test view. */
  auditJunit: z.string().optional(),
  buildInfo: z.string().optional(),
  /** The provenance: a DSSE envelope around an in-toto SLSA v1 statement. */
  provenance: z.string().optional(),
  /** What the image adds, changes and deletes against its origin (contents/listing). */
  contents: z.string().optional(),
  /** The SBOM as CycloneDX 1.6 JSON and as SPDX 2.3 JSON. */
  sbomCyclonedx: z.string().optional(),
  sbomSpdx: z.string().optional(),
});
export type Outputs = z.infer<typeof OutputsSchema>;

export const StateSchema = z.object({
  version: z.literal(1),
  buildId: z.string().uuid(),
  createdAt: z.string(),
  updatedAt: z.string(),
  definition: DefinitionSchema,
  completed: z.array(z.enum(STAGES)),
  /** `kept`: left for inspection (--keep-on-failure); that stage may run again, and `clean` removes it. */
  failed: z.object({ stage: z.enum(STAGES), message: z.string(), kept: z.boolean().default(false) }).optional(),
  cleaned: z.boolean().default(false),
  /** Given --keep-on-failure (or kept once): every later stage of the build keeps on failure too. */
  keepOnFailure: z.boolean().default(false),
  base: z
    .object({
      uuid: z.string(),
      name: z.string(),
      version: z.string(),
      dataset: z.string(),
      imported: z.array(z.string()),
      /** The base's manifest, for the fields the new image inherits. */
      manifest: z.record(z.unknown()),
    })
    .optional(),
  analog: z.object({ dataset: z.string(), mountpoint: z.string() }).optional(),
  /** Seal's read-only clone of the origin, while it lists the image's contents (core/layout originView). */
  originView: z.object({ dataset: z.string(), mountpoint: z.string() }).optional(),
  /** The contents listing's digest and counts, once seal made it (build-info has them too). */
  contents: z.object({ digest: z.string(), added: z.number(), changed: z.number(), deleted: z.number() }).optional(),
  chroot: z.object({ mounts: z.array(z.string()), createdDirs: z.array(z.string()) }).default({ mounts: [], createdDirs: [] }),
  tempFiles: z.array(z.string()).default([]),
  packagesInstalled: z.array(z.object({ name: z.string(), comment: z.string() })).optional(),
  /** What the package cache did in pkgadd (pkgsrc/mirror). */
  packageCache: PackageCacheStatsSchema.optional(),
  /** The versions pkgadd resolved, as a lockfile has them (`build --write-lock`, `buildimage lock`). */
  packagesResolved: PackageLockSchema.optional(),
  outputs: OutputsSchema.optional(),
  manifestUuid: z.string().optional(),
  timings: z.record(z.number()).default({}),
});
export type BuildState = z.infer<typeof StateSchema>;

export function newState(definition: BuildDefinition, buildId = randomUUID()): BuildState {
  const now = new Date().toISOString();
  return StateSchema.parse({
    version: 1,
    buildId,
    createdAt: now,
    updatedAt: now,
    definition,
    completed: [],
  });
}

/** The datasets and paths of this build's dataset root and work dir. */
export function layoutOf(state: BuildState): Layout {
  return new Layout(state.definition.datasetRoot, state.definition.workDir);
}

/** The lock beside a state file, held by whatever writes it (a stage, clean). */
export function stateLockPath(statePath: string): string {
  return `${statePath}.lock`;
}

/** The pid of the live process holding a state file's lock, if any. */
export async function stateHolder(statePath: string): Promise<number | undefined> {
  const path = stateLockPath(statePath);
  return (await lockHeld(path)) ? (await readLock(path))?.pid : undefined;
}

export class StateFile {
  constructor(
    readonly path: string,
    public state: BuildState,
  ) {}

  static async load(path: string): Promise<StateFile> {
    // Checked before reading: a link or a FIFO is not read at all.
    const st = await lstat(path).catch(() => undefined);
    if (st && !st.isFile() && !st.isSymbolicLink()) throw new StateError(`cannot read state file ${path}: not a regular file`, 'pass the state file, not a directory');
    const why = await untrustedFile(path).catch(() => undefined);
    if (why) throw new StateError(`state file ${path} ${why}: another user could have written it`, 'use a state file only buildimage (root or you) wrote');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new StateError(
        code === 'ENOENT' ? `no state file at ${path}` : `cannot read state file ${path}: ${(err as Error).message}`,
        'run `buildimage prepare` first, or pass --state or set BUILDIMAGE_STATE',
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new StateError(`state file ${path} is corrupt (not JSON)`, 'remove it and start again with `buildimage prepare`');
    }
    const parsed = StateSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new StateError(`state file ${path} is not a buildimage state file (${issue?.path.join('.') || 'top'}: ${issue?.message})`);
    }
    return new StateFile(path, parsed.data);
  }

  async save(): Promise<void> {
    this.state.updatedAt = new Date().toISOString();
    // Without credentials (a --source URL's user, password, query values): only this process uses them.
    const recorded = { ...this.state, definition: recordedDefinition(this.state.definition) };
    await writeAtomic(this.path, JSON.stringify(recorded, null, 2) + '\n', 0o600);
  }

  /** A kept failure of `stage` that may run again: every stage but prepare (a new prepare is a new build). */
  isRerun(stage: StageName): boolean {
    const f = this.state.failed;
    return !this.state.cleaned && !!f?.kept && f.stage === stage && stage !== 'prepare';
  }

  /** What to do with a kept build: its failed stage again, or clean. */
  keptHint(): string {
    const f = this.state.failed;
    const clean = `\`buildimage clean --state ${this.path}\``;
    return f && f.stage !== 'prepare' ? `after the fix, run it again with \`buildimage ${f.stage} --state ${this.path}\`; or remove it with ${clean}` : `remove it with ${clean}, then prepare again`;
  }

  /** Refuses a stage run out of order. */
  checkCanRun(stage: StageName): void {
    const s = this.state;
    if (s.cleaned) throw new StateError(`build ${s.buildId} was cleaned up; start a new one with \`buildimage prepare\``);
    if (this.isRerun(stage)) return;
    if (s.failed?.kept) throw new StateError(`build ${s.buildId} failed in ${s.failed.stage} and was kept for inspection: ${s.failed.message}`, this.keptHint());
    if (s.failed) {
      throw new StateError(`build ${s.buildId} failed in ${s.failed.stage}: ${s.failed.message}`, 'run `buildimage clean` and start again');
    }
    const idx = STAGES.indexOf(stage);
    if (s.completed.includes(stage)) throw new StateError(`stage ${stage} already ran for build ${s.buildId}`);
    const missing = STAGES.slice(0, idx).filter((st) => !s.completed.includes(st));
    if (missing.length) {
      throw new StateError(`cannot run ${stage}: ${missing.join(', ')} has not run yet for build ${s.buildId}`, `run \`buildimage ${missing[0]}\` first`);
    }
  }
}
