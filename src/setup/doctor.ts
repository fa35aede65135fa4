/**
 * `buildimage doctor`: can this machine build (and publish) images? Each
 * check says what it found and, when it is not fine, the fix. Checks are
 * read-only except one: a throwaway child dataset proves the dataset root
 * takes new datasets (delegation, quotas and readonly show up only then).
 */
import { randomUUID } from 'node:crypto';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { installedWithManifest, isInstalled } from '../base/install.js';
import { defaultImgadmDir } from '../base/known.js';
import { isUrl, openSource } from '../base/open.js';
import { oneLine } from '../core/errors.js';
import { ensureDir, NEW_FILE_FLAGS, tempNameFor, writeAtomic } from '../core/files.js';
import { junitXml } from '../core/junit.js';
import { checkWorkDir } from '../build/owned.js';
import { Layout } from '../core/layout.js';
import { run } from '../host/exec.js';
import { freeBytes, isSmartOS, locate, platform } from '../host/platform.js';
import { OWNER_PROPERTY, Zfs } from '../host/zfs.js';
import type { Signer } from '../http/signature.js';
import { redactUrl } from '../core/redact.js';
import { ImgapiClient } from '../imgapi/client.js';
import { SETTINGS } from '../settings/table.js';
import { mantaClient, mantaEnv, mantaSigner, sshDirOf, updatesEnv, updatesSigner } from '../publish/env.js';

export interface DoctorCheck {
  /** Stable id, e.g. `zfs`, `dataset-root`. */
  id: string;
  /** ok; warn = works, but something is worth knowing; fail = needed and broken; skip = not asked for. */
  status: 'ok' | 'warn' | 'fail' | 'skip';
  /** What was found. */
  detail: string;
  /** How to fix it (warn and fail). */
  fix?: string;
}

export interface DoctorResult {
  /** False when any check failed (exit 1). */
  ok: boolean;
  checks: DoctorCheck[];
  failed: number;
  warnings: number;
}

export interface DoctorOptions {
  datasetRoot?: string;
  /** Why no dataset root could be resolved (shown as the fix). */
  datasetRootProblem?: string;
  workDir: string;
  outputDir: string;
  source: string;
  channel?: string;
  /** Also check the base image is imported or in the source. */
  image?: string;
  /** Check Manta and the publish credentials too. */
  publish: boolean;
  env: NodeJS.ProcessEnv;
  zfs?: Zfs;
  /** Bound for each network check, ms. */
  networkTimeoutMs?: number;
}

const GiB = 1024 ** 3;
/** Below this much free space a build fails; below WARN it may. */
const FAIL_FREE = 1 * GiB;
const WARN_FREE = 4 * GiB;

const ok = (id: string, detail: string): DoctorCheck => ({ id, status: 'ok', detail });
const warn = (id: string, detail: string, fix: string): DoctorCheck => ({ id, status: 'warn', detail, fix });
const fail = (id: string, detail: string, fix: string): DoctorCheck => ({ id, status: 'fail', detail, fix });
const skip = (id: string, detail: string): DoctorCheck => ({ id, status: 'skip', detail });

function gib(bytes: number): string {
  return `${(bytes / GiB).toFixed(1)} GiB`;
}

function freeSpace(id: string, what: string, bytes: number, fix: string): DoctorCheck | undefined {
  if (bytes < FAIL_FREE) return fail(id, `${what}: only ${gib(bytes)} free`, fix);
  if (bytes < WARN_FREE) return warn(id, `${what}: ${gib(bytes)} free; a large image may not fit`, fix);
  return undefined;
}

async function withTimeout<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: no answer in ${ms / 1000} s`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function checkPrivileges(): DoctorCheck {
  const uid = process.getuid?.();
  if (uid === 0) return ok('privileges', 'running as root');
  return fail(
    'privileges',
    `running as uid ${uid}; zfs, mount and chroot need root`,
    isSmartOS() ? 'run with pfexec as a user with the Primary Administrator profile, or as root' : 'run as root (sudo), as the Jenkins agent does',
  );
}

async function checkZfs(): Promise<DoctorCheck> {
  const zfs = platform().commands.zfs;
  const path = await locate(zfs);
  if (!path) {
    return fail('zfs', `no ${zfs} command${zfs.startsWith('/') ? '' : ' on PATH'}`, isSmartOS() ? 'it is part of the SmartOS platform: run on a SmartOS zone with a delegated dataset' : 'install ZFS: bash scripts/setup-host.sh (zfs-fuse on Debian), or your distribution\'s zfsutils');
  }
  try {
    const r = await run(zfs, ['list', '-H', '-o', 'name', '-d', '0'], { timeoutMs: 30_000 });
    const pools = r.stdout.split('\n').filter(Boolean);
    const fuse = !isSmartOS() && (await run('pgrep', ['-x', 'zfs-fuse'], { okExitCodes: [0, 1] }).catch(() => undefined))?.exitCode === 0;
    return ok('zfs', `${path} works${fuse ? ' (zfs-fuse)' : ''}; pools: ${pools.join(', ') || 'none'}`);
  } catch (err) {
    return fail('zfs', `zfs does not answer: ${oneLine(err)}`, isSmartOS() ? 'check the zone has a delegated dataset' : 'start the ZFS daemon (zfs-fuse) or load the kernel module: bash scripts/setup-host.sh');
  }
}

async function checkDatasetRoot(o: DoctorOptions, zfs: Zfs): Promise<DoctorCheck> {
  const id = 'dataset-root';
  const root = o.datasetRoot;
  if (!root) {
    return fail(id, o.datasetRootProblem ?? 'no dataset root given', `pass --dataset-root POOL/DATASET or set ${SETTINGS['dataset-root'].env} (on SmartOS the default is the zone's delegated zones/<zonename>/data)`);
  }
  try {
    if (!(await zfs.exists(root))) {
      return fail(id, `${root} does not exist`, `zfs create -p ${root} (on SmartOS: give the zone a delegated dataset)`);
    }
    const p = await zfs.get(root, ['readonly', 'available', 'mounted']);
    if (p.readonly === 'on') return fail(id, `${root} is read-only`, `zfs set readonly=off ${root}`);
    // A real child proves delegation and quotas allow new datasets; named and marked so it is plainly ours.
    const probe = `${root}/buildimage-doctor-${randomUUID().slice(0, 8)}`;
    try {
      await zfs.create(probe, { [OWNER_PROPERTY]: 'doctor', mountpoint: 'none' });
    } catch (err) {
      return fail(id, `cannot create datasets under ${root}: ${oneLine(err)}`, `allow it: zfs allow <user> create,clone,destroy,mount,snapshot,send,receive ${root}, or run as root`);
    } finally {
      await run(platform().commands.zfs, ['destroy', probe], { okExitCodes: [0, 1], uninterruptible: true }).catch(() => undefined);
    }
    const avail = Number(p.available);
    return freeSpace(id, root, avail, `free space in the pool, or use another --dataset-root`) ?? ok(id, `${root}: exists, takes new datasets, ${gib(avail)} free`);
  } catch (err) {
    return fail(id, `${root}: ${oneLine(err)}`, 'check the name and that the pool is imported (zpool list)');
  }
}

export async function checkDir(id: string, what: string, dir: string, fixFlag: string): Promise<DoctorCheck> {
  // The work dir is where a build acts as root: no other user may be able to change it (as the build checks).
  const unsafe = id === 'work-dir' ? await checkWorkDir(dir).then(() => undefined, (err: unknown) => err) : undefined;
  if (unsafe) return fail(id, oneLine(unsafe), `pass ${fixFlag} naming a directory only root can write`);
  try {
    await ensureDir(dir, { what, flag: fixFlag });
    // Never through a link planted at the probe's name (the output dir may be a shared /tmp).
    const probe = tempNameFor(join(dir, '.buildimage-doctor'));
    await writeFile(probe, 'x', { flag: NEW_FILE_FLAGS });
    await rm(probe, { force: true });
    const free = await freeBytes(dir);
    return freeSpace(id, `${what} ${dir}`, free, `free space there, or pass ${fixFlag}`) ?? ok(id, `${what} ${dir}: writable, ${gib(free)} free`);
  } catch (err) {
    return fail(id, `${what} ${dir} is not writable: ${oneLine(err)}`, `create it or pass ${fixFlag}`);
  }
}

/** Those of `commands` that are not there (not on PATH, or an absolute path that is no executable). */
async function missingCommands(commands: string[]): Promise<string[]> {
  const found = await Promise.all(commands.map(locate));
  return commands.filter((_, i) => !found[i]);
}

/** What the chroot stage and the mounts need; rsync is not among them (the copy is built in). */
async function checkTools(): Promise<DoctorCheck> {
  const { mount, umount, chroot } = platform().commands;
  const missing = await missingCommands([mount, umount, chroot]);
  if (missing.length) {
    return fail('tools', `missing: ${missing.join(', ')}`, isSmartOS() ? 'these are part of the SmartOS platform (/usr/sbin): is this a SmartOS zone?' : 'apt-get install coreutils mount (or bash scripts/setup-host.sh)');
  }
  const git = await locate('git');
  if (!git) return warn('tools', 'chroot, mount, umount present; no git', 'install git so build-info can name the proto\'s commit');
  return ok('tools', 'chroot, mount, umount, git present (rsync is not needed: the copy is built in)');
}

/**
 * What `--run`/"scripts" need besides the chroot: on Linux each script gets
 * its own PID and mount namespaces (unshare, nsenter) and drops capabilities
 * (setpriv). Only scripts need them, so a missing one is a warning.
 */
export async function checkScriptTools(ns = platform().scriptNamespaces): Promise<DoctorCheck> {
  if (!ns) return ok('script-tools', 'scripts run in the chroot with the platform\'s own tools');
  const wanted = [ns.unshare, ns.nsenter, ns.setpriv, ns.waiter[0]];
  const missing = await missingCommands(wanted);
  if (missing.length) return warn('script-tools', `missing: ${missing.join(', ')}; builds with --run or "scripts" fail`, 'apt-get install util-linux coreutils (or bash scripts/setup-host.sh)');
  return ok('script-tools', `${wanted.join(', ')} present (for --run and "scripts")`);
}

async function checkCompressors(): Promise<DoctorCheck> {
  const has = async (c: string) => !!(await locate(c));
  const [gzip, pigz, bzip2, xz] = await Promise.all(['gzip', 'pigz', 'bzip2', 'xz'].map(has));
  if (!gzip) return fail('compressors', 'no gzip: images cannot be compressed or imported', 'install gzip (and pigz for speed)');
  const missing = [!pigz && 'pigz', !bzip2 && 'bzip2', !xz && 'xz'].filter(Boolean) as string[];
  if (missing.length) {
    return warn(
      'compressors',
      `gzip present; missing ${missing.join(', ')}`,
      `${!pigz ? 'install pigz (gzip in parallel: much faster seal); ' : ''}bzip2/xz are needed only for --compression bzip2/xz and images compressed so`,
    );
  }
  return ok('compressors', 'gzip, pigz, bzip2, xz present');
}

async function checkSource(o: DoctorOptions, zfs: Zfs): Promise<DoctorCheck> {
  const id = 'source';
  const ms = o.networkTimeoutMs ?? 10_000;
  // A URL may carry a user, password or token: never in the report.
  const shown = isUrl(o.source) ? redactUrl(o.source) : o.source;
  const layout = o.datasetRoot ? new Layout(o.datasetRoot, o.workDir) : undefined;
  // As a build decides (base/install): an installed base with a known manifest needs no source, so none is asked.
  const known = o.image && layout ? await installedWithManifest({ zfs, layout, imgadmDir: defaultImgadmDir() }, o.image).catch(() => undefined) : undefined;
  if (known) {
    return ok(id, `base ${o.image} (${known.manifest.name}@${known.manifest.version}) is installed with its manifest: builds from it need no source (${shown} not asked)`);
  }
  const imported = o.image && layout ? await isInstalled(zfs, layout, o.image).catch(() => false) : false;
  const fix = isUrl(o.source)
    ? 'check the network and https_proxy, the URL and --channel; or pass --source DIR with the base images'
    : 'put the base images (manifest + file) there, or pass another --source';
  let detail: string;
  try {
    if (isUrl(o.source)) {
      const client = new ImgapiClient({ url: o.source, channel: o.channel, timeoutMs: ms, connectTimeoutMs: ms, retry: { attempts: 1 }, env: o.env });
      const pong = await withTimeout(ms + 1000, shown, client.ping());
      detail = `${client.description} answers${pong.version ? ` (IMGAPI ${pong.version})` : ''}`;
    } else {
      const names = (await readdir(o.source)).filter((n) => n.endsWith('.imgmanifest'));
      if (!names.length) return fail(id, `${o.source} has no *.imgmanifest files`, fix);
      detail = `${o.source}: ${names.length} image manifests`;
    }
    if (o.image) {
      const m = await withTimeout(ms + 1000, shown, (await openSource(o.source, o.channel, o.env)).getManifest(o.image));
      detail += `; has ${o.image} (${m.name}@${m.version})`;
    }
  } catch (err) {
    // Installed, but its manifest unknown (installed by hand or an older buildimage): a build asks the source for it.
    if (imported) return fail(id, `${shown}: ${oneLine(err)}; ${o.image} is installed but its manifest is not known here, so a build needs the source once`, fix);
    return fail(id, `${shown}: ${oneLine(err)}`, fix);
  }
  return ok(id, imported ? `${detail}; ${o.image} installed (the source gives its manifest)` : detail);
}

async function checkManta(o: DoctorOptions): Promise<DoctorCheck[]> {
  if (!o.publish) {
    return [skip('credentials', 'publish credentials not checked (pass --publish)'), skip('manta', 'Manta not checked (pass --publish)')];
  }
  // The same lookups publish makes (publish/env.ts): doctor judges the setup publish will use.
  const m = mantaEnv(o.env);
  const sshDir = sshDirOf(o.env);
  const u = updatesEnv(o.env);
  const updatesCheck = await updatesSigner(u, sshDir).then(
    (s: Signer) => ok('updates-credentials', `updates IMGAPI key ${s.fingerprint} from ${s.source} (user ${u.user} at ${u.url})`),
    (err: unknown) => warn('updates-credentials', oneLine(err), 'needed only for publish -p: set UPDATES_IMGADM_IDENTITY (and UPDATES_IMGADM_USER, UPDATES_IMGADM_URL)'),
  );
  let signer;
  try {
    signer = await mantaSigner(m, sshDir);
  } catch (err) {
    const fix = m.keyId
      ? 'put the key in ~/.ssh unlocked, or ssh-add it and set SSH_AUTH_SOCK'
      : 'export MANTA_KEY_ID=SHA256:… (ssh-keygen -l -f KEY.pub), with the key in ~/.ssh or the ssh-agent';
    return [fail('credentials', oneLine(err), fix), updatesCheck, skip('manta', 'not checked: no usable key')];
  }
  const creds = ok('credentials', `key ${signer.fingerprint} from ${signer.source}${m.keyId ? '' : ' (MANTA_KEY_ID unset: ~/.ssh/id_rsa.pub)'}`);
  const ms = o.networkTimeoutMs ?? 10_000;
  const client = mantaClient(m, signer, { retry: { attempts: 1, firstDelayMs: 0, maxDelayMs: 0, maxRetryAfterMs: 0 }, stallMs: ms });
  try {
    const stor = `/${m.user}/stor`;
    const e = await withTimeout(ms, m.url, client.head(stor));
    if (!e) return [creds, updatesCheck, fail('manta', `${m.url}: ${stor} not found`, 'check MANTA_USER')];
    return [creds, updatesCheck, ok('manta', `${m.url} accepts the key for ${m.user}${m.subuser ? `/${m.subuser}` : ''}`)];
  } catch (err) {
    return [creds, updatesCheck, fail('manta', `${m.url}: ${oneLine(err)}`, 'check MANTA_URL, MANTA_USER/MANTA_SUBUSER, that the key is on the account, the network and the clock')];
  } finally {
    client.close();
  }
}

export async function doctor(o: DoctorOptions): Promise<DoctorResult> {
  const zfs = o.zfs ?? new Zfs();
  const checks: DoctorCheck[] = [checkPrivileges()];
  const zfsCheck = await checkZfs();
  checks.push(zfsCheck);
  checks.push(zfsCheck.status === 'fail' ? skip('dataset-root', 'not checked: zfs does not work') : await checkDatasetRoot(o, zfs));
  checks.push(await checkDir('work-dir', 'work dir', o.workDir, `--work-dir or ${SETTINGS['work-dir'].env}`));
  checks.push(await checkDir('output-dir', 'output dir', o.outputDir, '--output-dir'));
  checks.push(await checkTools());
  checks.push(await checkScriptTools());
  checks.push(await checkCompressors());
  checks.push(await checkSource(o, zfs));
  checks.push(...(await checkManta(o)));
  const failed = checks.filter((c) => c.status === 'fail').length;
  const warnings = checks.filter((c) => c.status === 'warn').length;
  return { ok: failed === 0, checks, failed, warnings };
}

/** The checks as JUnit XML: a failed check fails its case, a skipped one is skipped, a warning passes with its note. */
export function doctorJunit(r: DoctorResult, timestamp = new Date()): string {
  return junitXml({
    name: 'buildimage doctor',
    timestamp,
    cases: r.checks.map((c) => ({
      classname: 'buildimage.doctor',
      name: c.id,
      ...(c.status === 'fail' ? { failure: { message: c.detail, text: `${c.detail}${c.fix ? `\nfix: ${c.fix}` : ''}` } } : {}),
      ...(c.status === 'skip' ? { skipped: c.detail } : {}),
      output: c.status === 'warn' ? `warning: ${c.detail}${c.fix ? `\nfix: ${c.fix}` : ''}` : c.detail,
    })),
  });
}

/** `doctor --junit FILE`: written whole (temp file and rename, never through a link at FILE). */
export async function writeDoctorJunit(path: string, r: DoctorResult): Promise<string> {
  const abs = resolve(path);
  await ensureDir(dirname(abs), { what: "JUnit report's directory", flag: '--junit' });
  await writeAtomic(abs, doctorJunit(r));
  return abs;
}
