/**
 * `buildimage publish`: bits-upload.sh's job. From flags and environment
 * to a checked plan (local files only), then to a store (Manta, or a
 * directory with -L), then apply, or with --dry-run only look. Returns a
 * plain result the command renders as text or --json.
 */
import { access, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { BuildimageError, PublishError, UsageError } from '../core/errors.js';
import type { RetryPolicy } from '../core/retry.js';
import { KeyError } from '../http/keys.js';
import { interruptSignal, onInterruptSignals } from '../core/interrupt.js';
import { log, setLogBuildId } from '../core/log.js';
import { MantaError, mantaRetryable } from '../manta/client.js';
import { checkedOutputs } from '../build/owned.js';
import { StateFile, stateHolder } from '../build/state.js';
import { runPlan, type ApplyOptions, type Step } from './apply.js';
import { allowDirty, mantaClient, mantaEnv, mantaSigner, sshDirOf, updatesEnv } from './env.js';
import { channelFor, checkChannel, checkSegment, isDirtyStamp, mantaBaseDir, readLatestStamp } from './bits.js';
import type { ImgapiImporter } from './importer.js';
import { LocalStore } from './local-store.js';
import { MantaStore } from './manta-store.js';
import { makePlan, type PublishPlan } from './plan.js';
import { signBuildProvenance } from './provenance.js';
import type { Signer } from '../http/signature.js';
import { publishKeySigner } from '../provenance/envelope-file.js';
import type { Store } from './store.js';
import { updatesImporterFromEnv } from './updates.js';

export interface PublishOptions {
  /** -b */
  branch?: string;
  /** -B */
  tryBranch?: string;
  /** -d: Manta path (relative = under /<user>/stor) or, with -L, a local directory. */
  uploadDir?: string;
  /** -D */
  bitsDir: string;
  /** -L */
  local: boolean;
  /** -n */
  name?: string;
  /** -p */
  updates: boolean;
  /** -t */
  stamp?: string;
  /** --state: publish this finished build's outputs too. */
  state?: string;
  channel?: string;
  /** --upload-file: -p uploads the local image file to IMGAPI instead of IMGAPI fetching it from Manta. */
  uploadFile?: boolean;
  dryRun: boolean;
  subdirs?: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** The updates-IMGAPI import; default with -p: UpdatesImporter configured from UPDATES_IMGADM_*. */
  importer?: ImgapiImporter;
  retry?: RetryPolicy;
  stallMs?: number;
  sshDir?: string;
  progress?: ApplyOptions['progress'];
}

export interface PublishResult {
  ok: true;
  dryRun: boolean;
  store: { kind: 'manta' | 'local'; description: string };
  name: string;
  stamp: string;
  branch: string;
  tryBranch?: string;
  channel: string;
  /** The stamp directory. */
  destination: string;
  steps: Step[];
  uploaded: number;
  skipped: number;
  conflicts: number;
  bytes: number;
  artifactsFile: string;
  seconds: number;
}

interface Resolved {
  name: string;
  stamp: string;
  channel: string;
  bitsDir: string;
  outputs: string[];
}

async function resolveInputs(o: PublishOptions): Promise<Resolved> {
  const cwd = o.cwd ?? process.cwd();
  if (!o.branch) throw new UsageError('missing -b (branch)', 'eng passes -b $(BRANCH)');
  if (!o.uploadDir) throw new UsageError('missing -d (upload base directory)', 'e.g. -d /public/builds/NAME');
  if (o.local && o.updates) throw new UsageError('-p needs the images in Manta and cannot be used with -L');
  checkSegment('branch', '-b', o.branch);
  if (o.tryBranch) checkSegment('try branch', '-B', o.tryBranch);

  let outputs: string[] = [];
  let stateName: string | undefined;
  let stateVersion: string | undefined;
  if (o.state) {
    const statePath = resolve(cwd, o.state);
    const sf = await StateFile.load(statePath);
    const s = sf.state;
    setLogBuildId(s.buildId);
    const holder = await stateHolder(statePath);
    if (holder !== undefined) throw new UsageError(`state file ${o.state} is in use by pid ${holder}`, 'wait for the stage or clean that holds it to finish');
    if (!s.completed.includes('seal') || !s.outputs) {
      throw new UsageError(`build ${s.buildId} in ${o.state} has not finished (no image yet)`, 'run `buildimage seal` first');
    }
    // Every output file, as eng's `cp /tmp/$(NAME)-zfs-$(VERSION).* bits/$(NAME)/` takes them all;
    // only where seal puts them: a state file does not choose what is uploaded.
    outputs = await checkedOutputs(s);
    for (const p of outputs) {
      await access(p).catch(() => {
        throw new UsageError(`build output ${p} is gone`, 'it may have been cleaned up; build again');
      });
    }
    stateName = s.definition.manifest.name;
    stateVersion = s.definition.manifest.version;
  }

  const name = o.name ?? stateName;
  if (!name) throw new UsageError('missing -n (name)', 'eng passes -n $(NAME)');
  // Named as the user gave it: a bad name from the state file is not -n's fault.
  checkSegment('name', o.name !== undefined ? '-n' : `the name in ${o.state}`, name);
  const bitsDir = resolve(cwd, o.bitsDir);
  if (!(await stat(bitsDir).catch(() => undefined))?.isDirectory()) {
    throw new UsageError(`bits directory ${bitsDir} does not exist`, 'check -D, or run the build first');
  }
  const stamp = o.stamp ?? (await readLatestStamp(bitsDir, name)) ?? stateVersion;
  if (!stamp) {
    throw new UsageError(`no stamp: -t not given and ${bitsDir}/${name}/latest-build-stamp is missing`, "pass -t, or run eng's prepublish target first");
  }
  checkSegment('stamp', '-t', stamp);
  if (isDirtyStamp(stamp) && !allowDirty(o.env)) {
    throw new UsageError(`stamp ${stamp} is marked dirty: not publishing bits that cannot be traced to a commit`, 'commit first, or set BITS_UPLOAD_ALLOW_DIRTY=1');
  }
  // --channel > UPDATES_IMGADM_CHANNEL > ?channel= in UPDATES_IMGADM_URL > from the branch. bits-upload.sh
  // exported its computed channel over the URL's, silently ignoring a channel someone asked for there.
  const u = updatesEnv(o.env);
  const channel = checkChannel(o.channel ?? u.channel ?? urlChannel(u.url) ?? channelFor(o.branch, o.tryBranch));
  return { name, stamp, channel, bitsDir, outputs };
}

function urlChannel(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return new URL(url).searchParams.get('channel') || undefined;
  } catch {
    throw new UsageError('UPDATES_IMGADM_URL is not a URL', 'e.g. https://updates.tritondatacenter.com');
  }
}

/** Where -d points: a local directory, or /<user>/… in Manta. */
function baseDirOf(o: PublishOptions): string {
  if (o.local) return resolve(o.cwd ?? process.cwd(), o.uploadDir!);
  return mantaBaseDir(mantaEnv(o.env).user, o.uploadDir!);
}

/**
 * The key publish signs with: Manta's (required there); with -L the same
 * key when this machine has one (for the build's provenance), else none.
 */
async function publishSigner(o: PublishOptions): Promise<Signer | undefined> {
  const m = mantaEnv(o.env);
  const sshDir = o.sshDir ?? sshDirOf(o.env);
  if (!o.local) return mantaSigner(m, sshDir);
  return publishKeySigner({ keyId: m.keyId, sshDir, agentSocket: m.agentSocket }).catch(() => undefined);
}

function openStore(o: PublishOptions, baseDir: string, signer: Signer | undefined): Store {
  if (o.local) return new LocalStore(baseDir);
  return new MantaStore(mantaClient(mantaEnv(o.env), signer!, { retry: o.retry, stallMs: o.stallMs }));
}

/** One line for any failure; the hint says what to check. */
function asPublishError(err: unknown): unknown {
  if (interruptSignal().aborted) return interruptSignal().reason;
  if (err instanceof BuildimageError) return err;
  if (err instanceof KeyError) return new PublishError(err.message, { hint: 'check MANTA_KEY_ID, ~/.ssh and SSH_AUTH_SOCK' });
  // The Manta client's hint says what to check after a refusal (key, account, clock, proxy);
  // otherwise a rerun helps only where the next try may go through (network, 5xx, throttling).
  if (err instanceof MantaError) {
    const hint = err.hint ?? (mantaRetryable(err) ? 'rerun to continue: what is already published is skipped' : 'not a passing fault: a rerun would fail the same way');
    return new PublishError(err.message, { hint });
  }
  return err;
}

export async function publish(o: PublishOptions): Promise<PublishResult> {
  const t0 = Date.now();
  const r = await resolveInputs(o);
  let store: Store | undefined;
  const uninstall = onInterruptSignals('stopping; rerun to finish the publish');
  try {
    const baseDir = baseDirOf(o);
    // The IMGAPI key is found before anything is hashed; key and server are checked before anything is uploaded.
    const importer = o.updates ? (o.importer ?? (await updatesImporterFromEnv({ env: o.env, channel: r.channel, uploadFile: o.uploadFile, sshDir: o.sshDir, retry: o.retry }))) : undefined;
    // Manta's key is found before anything is hashed; with --state it also signs the build's provenance if seal could not.
    const signer = !o.local || r.outputs.length ? await publishSigner(o) : undefined;
    const plan: PublishPlan = await makePlan({
      name: r.name,
      branch: o.branch!,
      tryBranch: o.tryBranch,
      stamp: r.stamp,
      channel: r.channel,
      bitsDir: r.bitsDir,
      baseDir,
      subdirs: o.subdirs,
      outputs: r.outputs,
      imports: o.updates,
      progress: o.progress,
      beforeCheck: (files) => signBuildProvenance(files, r.outputs, signer, o.dryRun),
    });
    store = openStore(o, baseDir, signer);
    log.info(
      `${o.dryRun ? 'dry run: ' : ''}publishing ${plan.files.length} files of ${r.name} ${r.stamp} (branch ${o.branch}${o.tryBranch ? `, try ${o.tryBranch}` : ''}) to ${plan.stampDir} on ${store.description}`,
    );
    if (importer && plan.imports.length) await importer.check?.();
    if (importer) log.info(`${o.dryRun ? 'dry run: ' : ''}then importing ${plan.imports.length} image${plan.imports.length === 1 ? '' : 's'} into ${importer.description}, channel ${r.channel}`);
    const rep = await runPlan(plan, store, { dryRun: o.dryRun, importer, progress: o.progress });
    return {
      ok: true,
      dryRun: o.dryRun,
      store: { kind: store.kind, description: store.description },
      name: r.name,
      stamp: r.stamp,
      branch: o.branch!,
      ...(o.tryBranch ? { tryBranch: o.tryBranch } : {}),
      channel: r.channel,
      destination: plan.stampDir,
      steps: rep.steps,
      uploaded: rep.uploaded,
      skipped: rep.skipped,
      conflicts: rep.conflicts,
      bytes: rep.bytes,
      artifactsFile: plan.artifactsFile,
      seconds: (Date.now() - t0) / 1000,
    };
  } catch (err) {
    throw asPublishError(err);
  } finally {
    uninstall();
    store?.close();
  }
}
