/**
 * pkgsrc inside the image: the commands the original buildimage runs in
 * the chroot (pkgin update/full-upgrade, pkg_add -U, pkg_info -a,
 * pkg_admin fetch-pkg-vulnerabilities/audit) and parsing their output.
 */
import { lookup } from 'node:dns/promises';
import { BuildError } from '../core/errors.js';
import { junitXml } from '../core/junit.js';
import { runInChroot } from '../host/chroot.js';
import { log } from '../core/log.js';
import { startProgress } from '../core/progress.js';

export const PKGIN = '/opt/local/bin/pkgin';
export const PKG_ADD = '/opt/local/sbin/pkg_add';
export const PKG_INFO = '/opt/local/sbin/pkg_info';
export const PKG_ADMIN = '/opt/local/sbin/pkg_admin';
/** The package database in the image (pkgsrc's PKG_DBDIR on SmartOS): one directory per installed package. */
export const PKG_DBDIR = '/opt/local/pkg';

export interface InstalledPackage {
  name: string;
  comment: string;
}

/** `pkg_info -a` index lines (`%-19s %s`), sorted by name as the original does. */
export function parsePkgInfo(stdout: string): InstalledPackage[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((line) => {
      const m = /^(\S+)\s+(.*)$/.exec(line.trim());
      return { name: m ? m[1] : line.trim(), comment: m ? m[2].trim() : '' };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** pkg_summary(5) text: each block's PKGNAME and its DEPENDS lines. */
export function parseSummaryDepends(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const block of text.split(/\n\s*\n/)) {
    let name: string | undefined;
    const deps: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('PKGNAME=')) name = line.slice(8).trim();
      else if (line.startsWith('DEPENDS=')) deps.push(line.slice(8).trim());
    }
    if (name) out.set(name, deps);
  }
  return out;
}

export interface AuditFinding {
  /** The package as pkg_admin names it (name-version). */
  pkg: string;
  /** Its report lines, one per advisory. */
  advisories: string[];
}

const AUDIT_LINE = /^Package (\S+) (?:has an? |has reached end-of-life)/;

/**
 * `pkg_admin audit` output (audit.c: "Package %s has a %s vulnerability,
 * see %s", the eol line) by package, in the order first reported. A line
 * in no known form is kept under its own text, so nothing is dropped.
 */
export function parseAudit(stdout: string): AuditFinding[] {
  const by = new Map<string, string[]>();
  for (const raw of stdout.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const pkg = AUDIT_LINE.exec(line)?.[1] ?? line;
    by.set(pkg, [...(by.get(pkg) ?? []), line]);
  }
  return [...by].map(([pkg, advisories]) => ({ pkg, advisories }));
}

/** One advisory line's kind (`remote-code-execution`, `eol`, ...) and its URL; undefined for a line in no known form. */
export function parseAdvisory(line: string): { type: string; url: string } | undefined {
  const m = /^Package \S+ (?:has an? (?:ignored )?(\S+) vulnerability|has reached end-of-life \((\S+)\)), see (\S+)$/.exec(line.trim());
  return m ? { type: m[1] ?? m[2], url: m[3] } : undefined;
}

/**
 * The audit as JUnit for Jenkins' test view: one failing case per
 * vulnerable package with its advisories, or one passing case when there is
 * none. Package names and advisory text come from the image and the
 * vulnerability list: core/junit escapes them.
 */
export function auditJunit(stdout: string, image: string, timestamp = new Date()): string {
  const findings = parseAudit(stdout);
  const classname = `pkgaudit.${image}`;
  const cases = findings.length
    ? findings.map((f) => ({
        classname,
        name: f.pkg,
        failure: { message: `${f.advisories.length} advisor${f.advisories.length === 1 ? 'y' : 'ies'}: ${f.advisories[0]}`, type: 'vulnerability', text: f.advisories.join('\n') },
      }))
    : [{ classname, name: 'no vulnerable packages', output: 'pkg_admin audit reported nothing' }];
  return junitXml({ name: `pkg audit of ${image}`, cases, timestamp });
}

const PROXY_VARS = ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY'];

/**
 * Proxy settings usable inside the chroot: the image's resolver config is
 * not the build host's, so a proxy host name is resolved here and passed
 * as an address (the original did this for http_proxy only, racily).
 */
export async function chrootProxyEnv(env: NodeJS.ProcessEnv = process.env): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of PROXY_VARS) {
    const value = env[name];
    if (!value) continue;
    let url: URL;
    try {
      url = new URL(value.includes('://') ? value : `http://${value}`);
    } catch {
      throw new BuildError(`${name} is not a valid proxy URL: ${JSON.stringify(value)}`);
    }
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (!/^[\d.]+$/.test(host) && !host.includes(':')) {
      try {
        const { address, family } = await lookup(host);
        url.hostname = family === 6 ? `[${address}]` : address;
      } catch (err) {
        throw new BuildError(`cannot resolve proxy host ${host} from ${name}: ${(err as Error).message}`);
      }
    }
    out[name] = url.toString().replace(/\/$/, value.endsWith('/') ? '/' : '');
  }
  for (const name of ['no_proxy', 'NO_PROXY']) if (env[name]) out[name] = env[name]!;
  return out;
}

/** PATH in the chroot: pkgsrc's tools first, then the platform's. */
export const CHROOT_PATH = '/opt/local/bin:/opt/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin';

export function chrootEnv(proxy: Record<string, string>): Record<string, string> {
  return {
    PATH: CHROOT_PATH,
    HOME: '/root',
    LC_ALL: 'C',
    LANG: 'C',
    ...proxy,
  };
}

export class Pkgsrc {
  constructor(
    private readonly root: string,
    private readonly env: Record<string, string>,
    private readonly timeoutMs: number,
  ) {}

  /** The same tools with more in their environment (the package cache's PKG_PATH and PKG_REPOS, pkgsrc/mirror). */
  with(env: Record<string, string>): Pkgsrc {
    return new Pkgsrc(this.root, { ...this.env, ...env }, this.timeoutMs);
  }

  /** With a label, the long ones (pkgin, pkg_add) report elapsed time and their last output line. */
  private async run(argv: string[], okExitCodes = [0], label?: string) {
    const p = label ? startProgress(label, { unit: 'lines', heartbeat: true }) : undefined;
    let lines = 0;
    const echo = p ? (line: string) => line.trim() && p.update(++lines, { note: line.trim() }) : true;
    try {
      return await runInChroot(this.root, argv, { env: this.env, timeoutMs: this.timeoutMs, okExitCodes, echo });
    } finally {
      p?.done();
    }
  }

  async pkginUpdate(): Promise<void> {
    log.info('pkgin update');
    await this.run([PKGIN, '-y', 'update'], [0], 'pkgin update');
  }

  async pkginFullUpgrade(): Promise<void> {
    // The original appended the package list here (TOOLS-2202 bug); full-upgrade takes none.
    log.info('pkgin -y full-upgrade');
    await this.run([PKGIN, '-y', 'full-upgrade'], [0], 'pkgin full-upgrade');
  }

  /** `automatic`: -A, recorded as installed as a dependency (a locked install keeps what the lock says). */
  async pkgAdd(pkgs: string[], o: { automatic?: boolean } = {}): Promise<void> {
    const argv = [PKG_ADD, '-U', ...(o.automatic ? ['-A'] : []), ...pkgs];
    log.info(`pkg_add ${argv.slice(1).join(' ')}`);
    await this.run(argv, [0], 'pkg_add');
  }

  /** `pkg_add -n -U`: looks every package up as the install will, changing nothing; its stderr (exit 1 when some failed). */
  async pkgAddDryRun(pkgs: string[]): Promise<string> {
    log.info(`pkg_add -n -U (${pkgs.length} locked packages)`);
    return (await this.run([PKG_ADD, '-n', '-U', ...pkgs], [0, 1])).stderr;
  }

  async installed(): Promise<InstalledPackage[]> {
    return parsePkgInfo((await this.run([PKG_INFO, '-a'])).stdout);
  }

  /** Installed by request, not as a dependency: `pkg_info -u` names. */
  async userInstalled(): Promise<string[]> {
    return parsePkgInfo((await this.run([PKG_INFO, '-u'])).stdout).map((p) => p.name);
  }

  /** DEPENDS patterns of every installed package, by PKGNAME (`pkg_info -Xa`, pkg_summary(5) blocks). */
  async dependsOfInstalled(): Promise<Map<string, string[]>> {
    return parseSummaryDepends((await this.run([PKG_INFO, '-Xa'])).stdout);
  }

  /** A pkg_install.conf variable as pkg_add sees it (`pkg_admin config-var`); undefined when unset. */
  async configVar(name: string): Promise<string | undefined> {
    const v = (await this.run([PKG_ADMIN, 'config-var', name], [0, 1])).stdout.trim();
    return v || undefined;
  }

  /** The audit report; findings (exit 1) are a report, not a failure. */
  async audit(): Promise<string> {
    log.info('pkg_admin fetch-pkg-vulnerabilities');
    await this.run([PKG_ADMIN, 'fetch-pkg-vulnerabilities'], [0], 'fetch-pkg-vulnerabilities');
    log.info('pkg_admin audit');
    const r = await this.run([PKG_ADMIN, 'audit'], [0, 1]);
    return r.stdout;
  }
}
