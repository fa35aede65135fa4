/**
 * The sample zone datasets: the top level of a SmartOS-like zone dataset
 * (`root/` plus a provisioned zone's `config/`) with the pkgsrc stand-ins
 * installed, and the incremental "origin" layer that goes on top of a copy
 * of it, as triton-origin images sit on minimal-64-lts.
 *
 * Packages are installed for real, by running the stand-in pkg_add with
 * PKGSRC_STANDIN_ROOT pointing at the new root.
 */
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, type RunResult } from '../src/host/exec.js';
import {
  pkgname,
  SAMPLE_BASE_PREINSTALLED,
  SAMPLE_ORIGIN_PACKAGES,
  SAMPLE_PACKAGES,
  sampleSpec,
  writeRepository,
  type PackageSpec,
} from './packages.js';

export const STANDIN_TOOLS = ['pkg_add', 'pkg_info', 'pkg_admin', 'pkgin'] as const;
export type StandinTool = (typeof STANDIN_TOOLS)[number];
/**
 * The stand-ins' shared library: CommonJS modules in testbed/standins/lib,
 * whose entry point the launchers load. Installed whole at STANDIN_LIB_PATH.
 */
export const STANDIN_LIB_DIR = 'lib';
export const STANDIN_LIB_MAIN = 'index.cjs';

/** Where each stand-in is installed inside a zone root. */
export const STANDIN_PATHS: Record<StandinTool, string> = {
  pkg_add: '/opt/local/sbin/pkg_add',
  pkg_info: '/opt/local/sbin/pkg_info',
  pkg_admin: '/opt/local/sbin/pkg_admin',
  pkgin: '/opt/local/bin/pkgin',
};
/** Where the library folder is installed inside a zone root (the launchers look there). */
export const STANDIN_LIB_PATH = '/opt/local/lib/pkgsrc-standins';

/** The repository's package directory, relative to its base URL (see writeRepository). */
export const REPO_PACKAGES_PATH = '/All';
export const REPO_VULNERABILITIES_PATH = '/pkg-vulnerabilities.gz';

/** testbed/standins in the source tree (from testbed/ or its compiled copy). */
export function standinsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'testbed', 'standins');
    if (existsSync(join(candidate, STANDIN_LIB_DIR, STANDIN_LIB_MAIN))) return candidate;
    dir = dirname(dir);
  }
  throw new Error('cannot find testbed/standins above the testbed module');
}

/** The library's entry point in the source tree, for tests that load it directly. */
export function standinLibMain(): string {
  return join(standinsDir(), STANDIN_LIB_DIR, STANDIN_LIB_MAIN);
}

/** Copy the stand-ins into a zone root: the launchers where pkgsrc has the tools, the library folder under /opt/local/lib. */
export function installStandins(rootDir: string): void {
  const src = standinsDir();
  for (const tool of STANDIN_TOOLS) {
    const dest = join(rootDir, STANDIN_PATHS[tool]);
    mkdirSync(dirname(dest), { recursive: true, mode: 0o755 });
    copyFileSync(join(src, tool), dest);
    chmodSync(dest, 0o755);
  }
  const libSrc = join(src, STANDIN_LIB_DIR);
  const libDest = join(rootDir, STANDIN_LIB_PATH);
  mkdirSync(libDest, { recursive: true, mode: 0o755 });
  chmodSync(libDest, 0o755);
  for (const name of readdirSync(libSrc).filter((n) => n.endsWith('.cjs')).sort()) {
    copyFileSync(join(libSrc, name), join(libDest, name));
    chmodSync(join(libDest, name), 0o644);
  }
}

export interface StandinRunOptions {
  env?: Record<string, string | undefined>;
  /** Exit codes that do not throw; default any (the caller inspects exitCode). */
  okExitCodes?: number[];
  timeoutMs?: number;
}

/** Run an installed stand-in against rootDir without a chroot (PKGSRC_STANDIN_ROOT). */
export async function runStandin(rootDir: string, tool: StandinTool, args: string[], opts: StandinRunOptions = {}): Promise<RunResult> {
  const script = join(rootDir, STANDIN_PATHS[tool]);
  return run(process.execPath, [script, ...args], {
    env: { PKGSRC_STANDIN_ROOT: resolve(rootDir), http_proxy: undefined, HTTP_PROXY: undefined, ...opts.env },
    okExitCodes: opts.okExitCodes ?? Array.from({ length: 256 }, (_, i) => i),
    timeoutMs: opts.timeoutMs ?? 120_000,
  });
}

export interface ZoneDatasetOptions {
  /** Base URL of the sample repository server, e.g. http://127.0.0.1:8080 (no trailing slash). */
  repoUrl: string;
  imageName?: string;
  imageVersion?: string;
  /** pkgsrc branch, e.g. 2024Q4. */
  pkgsrcRelease?: string;
  arch?: string;
  /** Packages to install in the base; default SAMPLE_BASE_PREINSTALLED. Names (PKGNAME) or specs. */
  preinstalled?: Array<string | PackageSpec>;
  /** Specs that dependencies are resolved from; default SAMPLE_PACKAGES. */
  available?: PackageSpec[];
  /** Write `config/` beside `root/` as a provisioned zone has it; default true. */
  withConfig?: boolean;
}

export interface ZoneDataset {
  root: string;
  config: string | null;
  /** Installed packages after setup, sorted. */
  installed: string[];
}

const MOTD_BANNER = [
  '   __        .                   .',
  ' _|  |_      | .-. .  . .-. :--. |-',
  '|_    _|     ;|   ||  |(.-\' |  | |',
  '  |__|   `--\'  `-\' `;-| `-\' \'  \' `-\'',
  '                   /  ;',
  '                   `-\'',
];

function write(path: string, content: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  writeFileSync(path, content, { mode });
  chmodSync(path, mode);
}

function mkdir(path: string, mode = 0o755): void {
  mkdirSync(path, { recursive: true, mode });
  chmodSync(path, mode);
}

function pkgInstallConf(repoUrl: string): string {
  return (
    'GPG_KEYRING_PKGVULN=/opt/local/share/gnupg/pkgsrc-security.gpg\n' +
    'GPG_KEYRING_VERIFY=/opt/local/etc/gnupg/pkgsrc.gpg\n' +
    `PKG_PATH=${repoUrl}${REPO_PACKAGES_PATH}\n` +
    `PKGVULNURL=${repoUrl}${REPO_VULNERABILITIES_PATH}\n` +
    // The sample packages are unsigned.
    'VERIFIED_INSTALLATION=never\n'
  );
}

function repositoriesConf(repoUrl: string): string {
  return (
    '# pkgin repositories, one URL per line; the first one listed wins when\n' +
    '# several carry the same package. $arch and $osrelease are expanded.\n' +
    '#\n' +
    `${repoUrl}${REPO_PACKAGES_PATH}\n`
  );
}

/** Point a zone root's pkg_install.conf and pkgin repositories.conf at another repository URL. */
export function setRepoUrl(rootDir: string, repoUrl: string): void {
  const base = repoUrl.replace(/\/+$/, '');
  write(join(rootDir, 'opt/local/etc/pkg_install.conf'), pkgInstallConf(base));
  write(join(rootDir, 'opt/local/etc/pkgin/repositories.conf'), repositoriesConf(base));
}

function specFor(p: string | PackageSpec, available: PackageSpec[]): PackageSpec {
  return typeof p === 'string' ? sampleSpec(p, available) : p;
}

/**
 * Install packages into rootDir with the stand-in pkg_add, from a scratch
 * repository built inside the root (so PKG_PATH resolves there, and the
 * archives are byte-identical to the served ones), then rebuild the file
 * index as image builds do.
 */
async function installPackages(rootDir: string, wanted: PackageSpec[], available: PackageSpec[]): Promise<void> {
  if (!wanted.length) return;
  const scratchRel = `/var/tmp/.buildimage-sample-${process.pid}`;
  const scratch = join(rootDir, scratchRel);
  const all = new Map<string, PackageSpec>();
  for (const s of [...available, ...wanted]) all.set(pkgname(s), s);
  try {
    writeRepository(scratch, [...all.values()], { vulnerabilities: [] });
    await runStandin(rootDir, 'pkg_add', ['-u', ...wanted.map((s) => pkgname(s))], {
      env: { PKG_PATH: `${scratchRel}${REPO_PACKAGES_PATH}` },
      okExitCodes: [0],
    });
    await runStandin(rootDir, 'pkg_admin', ['rebuild'], { okExitCodes: [0] });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function listInstalled(rootDir: string): string[] {
  const db = join(rootDir, 'opt/local/pkg');
  if (!existsSync(db)) return [];
  return readdirSync(db)
    .filter((n) => n.includes('-') && statSync(join(db, n)).isDirectory())
    .sort();
}

/**
 * Write a zone dataset's top level into `dir` (which must exist and be
 * empty): `root/` laid out like a minimal SmartOS zone image and `config/`.
 */
export async function writeZoneDataset(dir: string, opts: ZoneDatasetOptions): Promise<ZoneDataset> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`not a directory: ${dir}`);
  if (readdirSync(dir).length) throw new Error(`not empty: ${dir}`);
  const imageName = opts.imageName ?? 'minimal-64-lts';
  const imageVersion = opts.imageVersion ?? '24.4.1';
  const release = opts.pkgsrcRelease ?? '2024Q4';
  const arch = opts.arch ?? 'x86_64';
  const repoUrl = opts.repoUrl.replace(/\/+$/, '');
  const root = join(dir, 'root');
  mkdir(root, 0o755);

  // The platform lofs-mounts these read-only; an image only carries the mountpoints.
  for (const d of ['dev', 'lib', 'proc', 'sbin', 'usr']) mkdir(join(root, d));
  symlinkSync('./usr/bin', join(root, 'bin'));
  mkdir(join(root, 'tmp'), 0o1777);
  mkdir(join(root, 'home'));
  mkdir(join(root, 'root'), 0o700);
  for (const d of ['var/log', 'var/db', 'var/ssh', 'var/spool/cron/crontabs', 'var/run']) mkdir(join(root, d));
  mkdir(join(root, 'var/tmp'), 0o1777);
  for (const d of ['bin', 'sbin', 'etc', 'lib', 'man', 'pkg', 'share', 'var']) mkdir(join(root, 'opt/local', d));

  const etc = (p: string, text: string, mode?: number): void => write(join(root, 'etc', p), text, mode);
  etc(
    'motd',
    `${MOTD_BANNER.slice(0, 4).join('\n')}\n${MOTD_BANNER[4]} Instance (${imageName} ${imageVersion})\n${MOTD_BANNER[5]}  https://docs.tritondatacenter.com/public-cloud/instances/infrastructure/images\n\n`,
  );
  etc('pkgsrc_version', `release: ${release}\narchitecture: ${arch}\n`);
  etc(
    'product',
    `Name: SmartOS Instance\nImage: ${imageName} ${imageVersion}\nDocumentation: https://docs.tritondatacenter.com/public-cloud/instances/infrastructure/images\n`,
  );
  etc('release', `  SmartOS Instance (${imageName} ${imageVersion})\n  Copyright 2024 MNX Cloud, Inc.\n  Use is subject to license terms.\n`);
  etc(
    'passwd',
    'root:x:0:0:Super-User:/root:/bin/bash\ndaemon:x:1:1::/:\nbin:x:2:2::/usr/bin:\nsys:x:3:3::/:\nadm:x:4:4:Admin:/var/adm:\nnobody:x:60001:60001:NFS Anonymous Access User:/:\n',
  );
  etc('shadow', 'root:NP:6445::::::\ndaemon:NP:6445::::::\nbin:NP:6445::::::\nsys:NP:6445::::::\nadm:NP:6445::::::\nnobody:*LK*:6445::::::\n', 0o400);
  etc('group', 'root::0:\nother::1:root\nbin::2:root,daemon\nsys::3:root,bin,adm\nadm::4:root,daemon\nstaff::10:\nnobody::60001:\n');
  etc('hosts', '::1\t\tlocalhost\n127.0.0.1\tlocalhost loghost\n');
  etc('resolv.conf', '');
  write(join(root, 'var/spool/cron/crontabs/root'), '0 5 * * * /opt/local/sbin/pkg_admin fetch-pkg-vulnerabilities >/dev/null 2>&1\n', 0o600);
  write(join(root, 'var/log/messages'), '');

  installStandins(root);
  setRepoUrl(root, repoUrl);

  const available = opts.available ?? SAMPLE_PACKAGES;
  const wanted = (opts.preinstalled ?? SAMPLE_BASE_PREINSTALLED).map((p) => specFor(p, available));
  await installPackages(root, wanted, available);

  let config: string | null = null;
  if (opts.withConfig ?? true) {
    config = join(dir, 'config');
    mkdir(config);
    for (const f of ['metadata.json', 'tags.json', 'routes.json']) write(join(config, f), '{}\n');
  }
  return { root, config, installed: listInstalled(root) };
}

export interface OriginLayerOptions {
  /** Image this layer is built on; default minimal-64-lts 24.4.1. */
  baseName?: string;
  baseVersion?: string;
  originName?: string;
  originVersion?: string;
  /** Source repository shown in the motd, as buildimage -S writes it. */
  sourceRepo?: string;
  /** Packages this layer adds; default SAMPLE_ORIGIN_PACKAGES. */
  packages?: Array<string | PackageSpec>;
  available?: PackageSpec[];
  /** Rewrite the package repository URL at the same time. */
  repoUrl?: string;
}

/**
 * Turn a copy of the base `root/` into the second (incremental) image level:
 * a new /etc/product and motd, /opt/local/etc/triton-origin, and a couple
 * more packages, with /var/db/pkgin removed as buildimage leaves it.
 */
export async function writeOriginLayer(rootDir: string, opts: OriginLayerOptions = {}): Promise<{ installed: string[] }> {
  const baseName = opts.baseName ?? 'minimal-64-lts';
  const baseVersion = opts.baseVersion ?? '24.4.1';
  const originName = opts.originName ?? 'triton-origin-x86_64-24.4.1';
  const originVersion = opts.originVersion ?? 'master-20250115T101500Z-g1a2b3c4';
  if (!existsSync(join(rootDir, STANDIN_PATHS.pkg_add))) throw new Error(`no pkgsrc stand-ins in ${rootDir}; write the base first`);
  if (opts.repoUrl) setRepoUrl(rootDir, opts.repoUrl);

  write(
    join(rootDir, 'etc/product'),
    `Name: Triton Component Origin\nImage: ${originName} ${originVersion}\nBase Image: ${baseName} ${baseVersion}\nDocumentation: https://github.com/TritonDataCenter/triton-origin-image\n`,
  );
  write(
    join(rootDir, 'etc/motd'),
    ` =  T R I T O N  =\n\n    ${originName} (${originVersion})\n    ${opts.sourceRepo ?? 'https://github.com/TritonDataCenter/triton-origin-image.git'}\n    ${baseName}@${baseVersion}\n\n`,
  );
  write(
    join(rootDir, 'opt/local/etc/triton-origin'),
    `name=${originName}\nversion=${originVersion}\nbase=${baseName}@${baseVersion}\n`,
  );

  const available = opts.available ?? SAMPLE_PACKAGES;
  const wanted = (opts.packages ?? SAMPLE_ORIGIN_PACKAGES).map((p) => specFor(p, available));
  await installPackages(rootDir, wanted, available);
  rmSync(join(rootDir, 'var/db/pkgin'), { recursive: true, force: true });
  return { installed: listInstalled(rootDir) };
}
