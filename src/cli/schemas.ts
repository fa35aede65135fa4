/**
 * The documented shape of every command's `--json` output: one object on
 * stdout, `ok: true` with the result or `ok: false` with the error. The
 * library's result types are checked against these at compile time, so a
 * field added in one place and not the other fails the build.
 */
import { z } from 'zod';
import type { ImagesResult, PruneResult } from '../base/cache.js';
import type { BuildResult, CleanResult, LockResult } from '../build/runner.js';
import type { ManyBuildResult } from '../build/multi.js';
import type { PlanResult } from '../build/plan.js';
import { STAGES } from '../build/state.js';
import { ASPECTS, type DiffResult } from '../contents/diff.js';
import { EntrySchema } from '../contents/listing.js';
import { PackageCacheStatsSchema } from '../pkgsrc/mirror.js';
import type { PublishResult } from '../publish/publish.js';
import type { VerifyResult } from '../provenance/verify.js';
import type { DoctorResult } from '../setup/doctor.js';
import type { InitResult } from '../setup/init.js';

/** Any command that fails (exit code as in the README). */
export const ErrorResultSchema = z
  .object({
    ok: z.literal(false),
    error: z.object({ message: z.string(), hint: z.string().optional(), exitCode: z.number().int() }).strict(),
  })
  .strict();

const Stage = z.enum(STAGES);

/** build, prepare, assemble, pkgadd, seal. */
export const BuildResultSchema = z
  .object({
    ok: z.literal(true),
    buildId: z.string().uuid(),
    /** With --state: the state file the next stage takes. */
    stateFile: z.string().optional(),
    completed: z.array(Stage),
    base: z.object({ uuid: z.string(), name: z.string(), version: z.string(), imported: z.array(z.string()) }).strict().optional(),
    /** Between stages: the zone analog dataset and where it is mounted. */
    analog: z.object({ dataset: z.string(), mountpoint: z.string() }).strict().optional(),
    /** After seal: the new image and its files. */
    image: z
      .object({
        uuid: z.string().uuid(),
        outputs: z
          .object({
            image: z.string(),
            manifest: z.string(),
            packages: z.string().optional(),
            audit: z.string().optional(),
            auditJunit: z.string().optional(),
            buildInfo: z.string().optional(),
            provenance: z.string().optional(),
            /** The contents listing (.contents.json.gz). */
            contents: z.string().optional(),
            /** The SBOM: CycloneDX 1.6 JSON, SPDX 2.3 JSON. */
            sbomCyclonedx: z.string().optional(),
            sbomSpdx: z.string().optional(),
          })
          .strict(),
      })
      .strict()
      .optional(),
    /** Packages in the image (after pkgadd). */
    packages: z.number().int().optional(),
    /** What the package cache did in pkgadd: hits, misses (downloads), their bytes, bad files dropped, files evicted. */
    packageCache: PackageCacheStatsSchema.optional(),
    /** build --write-lock: the lockfile written. */
    lockfile: z.string().optional(),
    /** Seconds per finished stage. */
    timings: z.record(z.number()),
  })
  .strict();

const ErrorObject = z.object({ message: z.string(), hint: z.string().optional(), exitCode: z.number().int() }).strict();

/** One image of a multi-image build: how it ended, its stages' seconds, and its result or error. */
const ImageOutcomeSchema = z
  .object({
    name: z.string(),
    status: z.enum(['built', 'failed', 'stopped', 'not started']),
    seconds: z.number(),
    timings: z.record(z.number()),
    failedStage: z.object({ stage: z.string(), interrupted: z.boolean(), seconds: z.number() }).strict().optional(),
    result: BuildResultSchema.optional(),
    error: ErrorObject.optional(),
  })
  .strict();

const ManyFields = {
  /** How many images were built at once. */
  jobs: z.number().int(),
  /** Wall-clock seconds of the whole run. */
  seconds: z.number(),
  images: z.array(ImageOutcomeSchema),
};

/** build of a definition with "images": every image (after --only), in the definition's order. */
export const ManyBuildResultSchema = z.object({ ok: z.literal(true), ...ManyFields }).strict();

/** build of a definition with "images" where some image did not build: the error, and every image beside it. */
export const ManyBuildFailureSchema = z.object({ ok: z.literal(false), error: ErrorObject, ...ManyFields }).strict();

/** plan: the images a definition builds and what each needs. */
export const PlanResultSchema = z
  .object({
    ok: z.literal(true),
    config: z.string().optional(),
    estimate: z.string(),
    images: z.array(
      z
        .object({
          name: z.string(),
          base: z.object({ uuid: z.string(), name: z.string().optional(), version: z.string().optional(), installed: z.boolean(), bytes: z.number().optional() }).strict(),
          packages: z.array(z.string()),
          proto: z.string().optional(),
          add: z.array(z.object({ path: z.string(), dir: z.string().optional() }).strict()),
          prefix: z.string(),
          version: z.string().optional(),
          outputDir: z.string(),
          stem: z.string(),
          protoBytes: z.number().optional(),
          estimatedBytes: z.number().optional(),
        })
        .strict(),
    ),
  })
  .strict();

export const CleanResultSchema = z
  .object({
    ok: z.literal(true),
    destroyed: z.array(z.string()),
    unmounted: z.array(z.string()),
    removed: z.array(z.string()),
    /** Left alone because a live build holds them. */
    skipped: z.array(z.string()),
    /** --all: builds kept on purpose (after a failure, or between discrete stages), left without --include-kept. */
    kept: z.array(z.string()),
  })
  .strict();

const PublishStep = z.discriminatedUnion('op', [
  z.object({ op: z.literal('stage'), path: z.string(), from: z.string() }).strict(),
  z.object({ op: z.literal('mkdir'), path: z.string() }).strict(),
  z.object({ op: z.literal('upload'), path: z.string(), rel: z.string(), size: z.number(), md5: z.string() }).strict(),
  z.object({ op: z.literal('skip'), path: z.string(), rel: z.string(), reason: z.string() }).strict(),
  z.object({ op: z.literal('conflict'), path: z.string(), rel: z.string(), reason: z.string() }).strict(),
  z.object({ op: z.literal('put'), path: z.string(), what: z.enum(['md5sums', 'sha256sums']) }).strict(),
  z.object({ op: z.literal('pointer'), path: z.string(), target: z.string(), unchanged: z.boolean() }).strict(),
  z.object({ op: z.literal('artifacts'), path: z.string() }).strict(),
  z.object({ op: z.literal('import'), uuid: z.string(), path: z.string(), channel: z.string(), action: z.string(), detail: z.string(), calls: z.array(z.string()).optional() }).strict(),
]);

export const PublishResultSchema = z
  .object({
    ok: z.literal(true),
    dryRun: z.boolean(),
    store: z.object({ kind: z.enum(['manta', 'local']), description: z.string() }).strict(),
    name: z.string(),
    stamp: z.string(),
    branch: z.string(),
    tryBranch: z.string().optional(),
    channel: z.string(),
    /** The stamp directory: <upload-dir>/<stamp>. */
    destination: z.string(),
    /** Every upload, skip, pointer and import, in order (the plan with --dry-run). */
    steps: z.array(PublishStep),
    uploaded: z.number().int(),
    skipped: z.number().int(),
    conflicts: z.number().int(),
    bytes: z.number(),
    artifactsFile: z.string(),
    seconds: z.number(),
  })
  .strict();

export const DoctorCheckSchema = z
  .object({ id: z.string(), status: z.enum(['ok', 'warn', 'fail', 'skip']), detail: z.string(), fix: z.string().optional() })
  .strict();

export const DoctorResultSchema = z
  .object({ ok: z.boolean(), checks: z.array(DoctorCheckSchema), failed: z.number().int(), warnings: z.number().int() })
  .strict();

export const InitResultSchema = z
  .object({
    ok: z.literal(true),
    dir: z.string(),
    written: z.array(z.string()),
    overwritten: z.array(z.string()),
    gitignore: z.object({ path: z.string(), added: z.array(z.string()), skipped: z.string().optional() }).strict(),
    edit: z.array(z.string()),
    next: z.array(z.string()),
  })
  .strict();

/** verify: what was checked, against which key. */
export const VerifyResultSchema = z
  .object({
    ok: z.literal(true),
    image: z.string(),
    provenance: z.string(),
    /** SHA256 fingerprint of the public key whose signature verified. */
    keyid: z.string(),
    sha256: z.string(),
    sha1: z.string(),
    predicateType: z.string(),
  })
  .strict();

const ImageRef = z.object({ uuid: z.string(), name: z.string(), version: z.string() }).strict();
const ListingSummary = z.object({ file: z.string(), image: ImageRef, origin: ImageRef, contentDigest: z.string(), entries: z.number().int() }).strict();
const DiffItem = z.object({ path: z.string(), what: z.array(z.enum(ASPECTS)).optional(), a: EntrySchema.optional(), b: EntrySchema.optional() }).strict();

/** diff: exit 0 when `same`, 1 when not. */
export const DiffResultSchema = z
  .object({
    ok: z.literal(true),
    same: z.boolean(),
    sameOrigin: z.boolean(),
    a: ListingSummary,
    b: ListingSummary,
    counts: z.object({ added: z.number().int(), removed: z.number().int(), changed: z.number().int() }).strict(),
    groups: z.array(z.object({ top: z.string(), added: z.array(DiffItem), removed: z.array(DiffItem), changed: z.array(DiffItem) }).strict()),
  })
  .strict();

export const LockResultSchema = z
  .object({ ok: z.literal(true), lockfile: z.string(), buildId: z.string().uuid(), packages: z.array(z.string()) })
  .strict();

const UseRecordSchema = z.object({ at: z.string(), build: z.string(), image: z.string() }).strict();

/** images: the base images on the dataset root. */
export const ImagesResultSchema = z
  .object({
    ok: z.literal(true),
    datasetRoot: z.string(),
    images: z.array(
      z
        .object({
          uuid: z.string().uuid(),
          dataset: z.string(),
          /** From the manifest kept at install, else "-". */
          name: z.string(),
          version: z.string(),
          /** ZFS `used` (bytes destroying it frees) and `referenced`. */
          used: z.number(),
          referenced: z.number(),
          createdByBuildimage: z.boolean(),
          /** ZFS `creation`, ISO 8601. */
          installed: z.string(),
          lastUsed: UseRecordSchema.nullable(),
          /** Its origin image on the dataset root. */
          origin: z.string().nullable(),
          /** Datasets cloned from it. */
          originOf: z.array(
            z.object({ dataset: z.string(), kind: z.enum(['image', 'analog', 'origin-view', 'other']), build: z.string().optional() }).strict(),
          ),
        })
        .strict(),
    ),
  })
  .strict();

const PruneAction = z.enum(['destroy', 'keep', 'skip', 'failed']);

/** prune: one entry per image (`destroy` with --dry-run: would be destroyed). */
export const PruneResultSchema = z
  .object({
    ok: z.literal(true),
    dryRun: z.boolean(),
    keepDays: z.number().int(),
    freed: z.number(),
    images: z.array(
      z
        .object({ uuid: z.string().uuid(), dataset: z.string(), name: z.string(), version: z.string(), action: PruneAction, reason: z.string(), used: z.number() })
        .strict(),
    ),
    partials: z.array(z.object({ dataset: z.string(), action: PruneAction, reason: z.string() }).strict()),
    removed: z.array(z.string()),
  })
  .strict();

/** Which schema each command's `--json` success output follows. */
export const COMMAND_RESULT_SCHEMAS = {
  build: z.union([BuildResultSchema, ManyBuildResultSchema]),
  prepare: BuildResultSchema,
  assemble: BuildResultSchema,
  pkgadd: BuildResultSchema,
  seal: BuildResultSchema,
  clean: CleanResultSchema,
  publish: PublishResultSchema,
  doctor: DoctorResultSchema,
  init: InitResultSchema,
  verify: VerifyResultSchema,
  diff: DiffResultSchema,
  lock: LockResultSchema,
  images: ImagesResultSchema,
  prune: PruneResultSchema,
  plan: PlanResultSchema,
} as const;

// Compile-time: the library's result types and the schemas describe the same objects.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameBuild: Same<z.infer<typeof BuildResultSchema>, BuildResult> = true;
const sameClean: Same<z.infer<typeof CleanResultSchema>, CleanResult> = true;
const samePublish: Same<z.infer<typeof PublishResultSchema>, PublishResult> = true;
const sameDoctor: Same<z.infer<typeof DoctorResultSchema>, DoctorResult> = true;
const sameInit: Same<z.infer<typeof InitResultSchema>, InitResult> = true;
const sameVerify: Same<z.infer<typeof VerifyResultSchema>, VerifyResult> = true;

const sameDiff: Same<z.infer<typeof DiffResultSchema>, DiffResult> = true;
const sameLock: Same<z.infer<typeof LockResultSchema>, LockResult> = true;
const sameImages: Same<z.infer<typeof ImagesResultSchema>, ImagesResult> = true;
const samePrune: Same<z.infer<typeof PruneResultSchema>, PruneResult> = true;
const sameMany: Same<z.infer<typeof ManyBuildResultSchema>, ManyBuildResult & { ok: true }> = true;
const samePlan: Same<z.infer<typeof PlanResultSchema>, PlanResult> = true;
export const SCHEMAS_MATCH_TYPES = sameBuild && sameClean && samePublish && sameDoctor && sameInit && sameVerify && sameDiff && sameLock && sameMany && samePlan && sameImages && samePrune;
