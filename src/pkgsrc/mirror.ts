/**
 * How the package cache (pkgsrc/cache) is offered to pkg_add and pkgin in
 * the chroot: a caching mirror on 127.0.0.1 in the build process, for the
 * length of pkgadd. Each http(s) repository the image names (PKG_PATH as
 * pkg_add sees it, repositories.conf) is given to the tools as a mirror
 * URL through the environment (PKG_PATH, PKG_REPOS: both override the
 * files, pkg_install.conf(5), pkgin(1)), so the image's own files stay
 * byte for byte what they were.
 *
 * The mirror passes everything through (directory indexes, pkg_summary,
 * conditional GETs), so the tools choose exactly the packages they would
 * choose from the repository. Only a GET of a package file that the
 * directory's pkg_summary.gz lists (FILE_SIZE, FILE_CKSUM) is answered
 * from the cache when a checked copy is there, or else fetched, checked
 * against the summary, kept and answered. A file the summary does not list
 * is passed through uncached. The summary is fetched once per repository
 * directory and build, so a warm build still asks the repository for its
 * pkg_summary (and pkg_add for its index), never for a package.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import { rm, type FileHandle } from 'node:fs/promises';
import { z } from 'zod';
import { oneLine } from '../core/errors.js';
import { readSmallFile } from '../core/files.js';
import { log } from '../core/log.js';
import { redactUrl } from '../core/redact.js';
import { routeFor, type Route } from '../http/proxy.js';
import { resolveInRoot } from '../host/rootfs.js';
import { PackageCache, repositoryKey, type CachedFile } from './cache.js';
import { parseSummaryFiles, type SummaryFile } from './summary.js';

const gunzipAsync = promisify(gunzip);

/** What the cache did for one build: in the timing table, the state, build-info.json and --json. */
export const PackageCacheStatsSchema = z
  .object({
    /** Package files answered from the cache, and their bytes. */
    hits: z.number().int().nonnegative(),
    hitBytes: z.number().int().nonnegative(),
    /** Package files fetched from a repository (kept when they matched its pkg_summary), and their bytes. */
    misses: z.number().int().nonnegative(),
    missBytes: z.number().int().nonnegative(),
    /** Cached files found bad (size, digest, kind) and removed. */
    dropped: z.number().int().nonnegative(),
    /** Files evicted after the build to keep the cache in its bound. */
    evicted: z.number().int().nonnegative(),
  })
  .strict();
export type PackageCacheStats = z.infer<typeof PackageCacheStatsSchema>;

/** pkgin's repository list in the image (SmartOS: --sysconfdir=/opt/local/etc). */
export const PKGIN_REPOSITORIES_CONF = '/opt/local/etc/pkgin/repositories.conf';
const MAX_REPOSITORIES_CONF_BYTES = 64 * 1024;
const MAX_SUMMARY_GZ_BYTES = 128 * 1024 ** 2;
const MAX_SUMMARY_BYTES = 1024 ** 3;
const MAX_REDIRECTS = 5;
/** No byte from a repository for this long: the request fails (as libfetch's would time out). */
const IDLE_MS = 120_000;
const SCHEME_RE = /^https?:\/\//i;

class UpstreamError extends Error {}

function contentType(name: string): string {
  return name.endsWith('.tbz') ? 'application/x-bzip2' : 'application/x-gzip';
}

/** A Transform that holds back the last chunk until the whole stream had `sha256`: a file changed under us is never served whole. */
function verifying(sha256: string): Transform {
  const h = createHash('sha256');
  let held: Buffer | undefined;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      const prev = held;
      held = chunk;
      cb(null, prev);
    },
    flush(cb) {
      if (h.digest('hex') !== sha256) cb(new Error('the cached file changed while it was served'));
      else cb(null, held);
    },
  });
}

export class PackageMirror {
  readonly stats: PackageCacheStats = { hits: 0, hitBytes: 0, misses: 0, missBytes: 0, dropped: 0, evicted: 0 };
  private readonly bases: string[] = [];
  private readonly token = randomBytes(16).toString('hex');
  private readonly summaries = new Map<string, Promise<Map<string, SummaryFile> | undefined>>();
  private readonly routes = new Map<string, Route>();
  private url = '';

  private constructor(
    private readonly cache: PackageCache,
    private readonly server: http.Server,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  static async start(cache: PackageCache, env: NodeJS.ProcessEnv = process.env): Promise<PackageMirror> {
    const server = http.createServer();
    const mirror = new PackageMirror(cache, server, env);
    server.on('request', (req, res) => void mirror.handle(req, res));
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(0, '127.0.0.1', () => ok());
    });
    mirror.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return mirror;
  }

  async close(): Promise<void> {
    await new Promise<void>((ok) => {
      this.server.close(() => ok());
      this.server.closeAllConnections();
    });
    for (const r of this.routes.values()) r.agent.destroy();
  }

  /**
   * The mirror URL to give the tools for a repository entry, or undefined
   * when it is not one the mirror takes (not http(s), a space in it, a
   * `$arch` in the host). pkgin's `$arch`/`$osrelease` stay in the part
   * after the mirror's prefix, for pkgin to fill in.
   */
  offer(entry: string): string | undefined {
    if (!SCHEME_RE.test(entry) || [...entry].some((c) => c.charCodeAt(0) < 0x21 || c.charCodeAt(0) === 0x7f)) return undefined;
    const hostEnd = entry.indexOf('/', entry.indexOf('//') + 2);
    const dollar = entry.indexOf('$');
    const split = dollar < 0 ? entry.length : entry.lastIndexOf('/', dollar);
    if (dollar >= 0 && (hostEnd < 0 || split < hostEnd)) return undefined;
    const base = entry.slice(0, split);
    try {
      new URL(base);
    } catch {
      return undefined;
    }
    let n = this.bases.indexOf(base);
    if (n < 0) n = this.bases.push(base) - 1;
    return `${this.url}/${this.token}/${n}${entry.slice(split)}`;
  }

  /** The repository URL a request to the mirror stands for, or undefined. */
  private target(path: string | undefined): URL | undefined {
    const prefix = `/${this.token}/`;
    if (!path?.startsWith(prefix) || path.length > 8192) return undefined;
    const m = /^(\d{1,4})((?:[/?].*)?)$/s.exec(path.slice(prefix.length));
    const base = m ? this.bases[Number(m[1])] : undefined;
    if (!m || base === undefined) return undefined;
    try {
      const url = new URL(base + m[2]);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
    } catch {
      return undefined;
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const target = this.target(req.url);
    try {
      if (!target) return void plain(res, 404, 'Not Found');
      if (req.method !== 'GET' && req.method !== 'HEAD') return void plain(res, 405, 'Method Not Allowed');
      const name = target.pathname.slice(target.pathname.lastIndexOf('/') + 1);
      if (req.method === 'GET' && /\.(tgz|tbz)$/.test(name) && !target.search) await this.servePackage(req, res, target, name);
      else await this.passThrough(req, res, target);
    } catch (err) {
      const why = oneLine(err);
      log.warn(`package cache: ${target ? redactUrl(target) : 'request'}: ${why}`);
      if (!res.headersSent) plain(res, 502, why);
      else res.destroy();
    }
  }

  /** A repository request as the tool made it; its answer as the repository gave it. */
  private async passThrough(req: http.IncomingMessage, res: http.ServerResponse, target: URL, countAsPackage = false): Promise<void> {
    const headers: Record<string, string> = {};
    for (const h of ['if-modified-since', 'if-none-match', 'user-agent', 'accept']) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    const up = await this.request(target, req.method === 'HEAD' ? 'HEAD' : 'GET', headers);
    const out: Record<string, string> = {};
    for (const h of ['content-type', 'content-length', 'last-modified', 'etag']) {
      const v = up.headers[h];
      if (typeof v === 'string') out[h] = v;
    }
    if (countAsPackage && up.statusCode === 200) {
      this.stats.misses++;
      up.on('data', (c: Buffer) => (this.stats.missBytes += c.length));
    }
    res.writeHead(up.statusCode ?? 502, out);
    await pipeline(up, res);
  }

  private async servePackage(req: http.IncomingMessage, res: http.ServerResponse, target: URL, name: string): Promise<void> {
    let fileName: string;
    try {
      fileName = decodeURIComponent(name);
    } catch {
      return this.passThrough(req, res, target, true);
    }
    const dir = new URL(target.href);
    dir.pathname = target.pathname.slice(0, target.pathname.lastIndexOf('/'));
    const entry = (await this.summaryOf(dir))?.get(fileName);
    if (!entry || entry.cksum === 'unknown' || entry.size > this.cache.maxBytes) {
      log.debug(`package cache: ${fileName} is not cached (${!entry ? 'not in the pkg_summary' : entry.cksum === 'unknown' ? 'its FILE_CKSUM is in a form not known' : 'larger than the cache'})`);
      return this.passThrough(req, res, target, true);
    }
    // The key leaves out credentials: the same repository is one cache whoever logs in.
    const key = repositoryKey(redactUrl(dir));
    const hit = await this.cache.lookup(key, entry);
    this.stats.dropped = this.cache.dropped;
    if (hit) {
      this.stats.hits++;
      this.stats.hitBytes += hit.size;
      log.debug(`package cache: ${fileName} from the cache`);
      return this.serveFile(res, hit, fileName);
    }
    const tmp = await this.cache.newTemp().catch((err: unknown) => {
      log.warn(`package cache: ${oneLine(err)}: ${fileName} passed through uncached`);
      return undefined;
    });
    if (!tmp) return this.passThrough(req, res, target, true);
    try {
      const up = await this.request(target, 'GET', {});
      if (up.statusCode !== 200) {
        // Not a package: what the repository answered, as it answered it.
        res.writeHead(up.statusCode ?? 502, typeof up.headers['content-type'] === 'string' ? { 'content-type': up.headers['content-type'] } : {});
        await pipeline(up, res);
        return;
      }
      this.stats.misses++;
      const h256 = createHash('sha256');
      const hSum = entry.cksum && entry.cksum.alg !== 'sha256' ? createHash(entry.cksum.alg) : undefined;
      let bytes = 0;
      for await (const c of up) {
        const chunk = c as Buffer;
        bytes += chunk.length;
        this.stats.missBytes += chunk.length;
        if (bytes > entry.size) {
          up.destroy();
          throw new UpstreamError(`${fileName} is larger than the ${entry.size} bytes its pkg_summary says (FILE_SIZE)`);
        }
        h256.update(chunk);
        hSum?.update(chunk);
        await tmp.fh.write(chunk);
      }
      const sha256 = h256.digest('hex');
      if (bytes !== entry.size) throw new UpstreamError(`${fileName} has ${bytes} bytes, its pkg_summary says ${entry.size} (FILE_SIZE)`);
      if (entry.cksum && (hSum ? hSum.digest('hex') : sha256) !== entry.cksum.hex) {
        throw new UpstreamError(`${fileName} does not match its pkg_summary (FILE_CKSUM ${entry.cksum.alg})`);
      }
      await this.cache.store(key, fileName, tmp.path, sha256).catch((err: unknown) => log.warn(`package cache: cannot keep ${fileName}: ${oneLine(err)}`));
      log.debug(`package cache: ${fileName} fetched and kept`);
      await this.serveFile(res, { fh: tmp.fh, size: bytes, sha256 }, fileName, false);
    } finally {
      await tmp.fh.close().catch(() => undefined);
      await rm(tmp.path, { force: true });
    }
  }

  private async serveFile(res: http.ServerResponse, f: CachedFile, fileName: string, close = true): Promise<void> {
    try {
      res.writeHead(200, { 'content-type': contentType(fileName), 'content-length': String(f.size) });
      await pipeline(Readable.from(readAll(f.fh)), verifying(f.sha256), res);
    } finally {
      if (close) await f.fh.close().catch(() => undefined);
    }
  }

  /** The package files a repository directory's pkg_summary.gz lists, once per build; undefined when it has none we can read. */
  private summaryOf(dir: URL): Promise<Map<string, SummaryFile> | undefined> {
    const k = dir.href;
    let p = this.summaries.get(k);
    if (!p) {
      p = this.fetchSummary(dir).catch((err: unknown) => {
        log.warn(`package cache: no pkg_summary.gz from ${redactUrl(dir)} (${oneLine(err)}): its packages are fetched every time`);
        return undefined;
      });
      this.summaries.set(k, p);
    }
    return p;
  }

  private async fetchSummary(dir: URL): Promise<Map<string, SummaryFile>> {
    const url = new URL(dir.href);
    url.pathname = `${dir.pathname}/pkg_summary.gz`;
    const up = await this.request(url, 'GET', {});
    if (up.statusCode !== 200) {
      up.resume();
      throw new UpstreamError(`HTTP ${up.statusCode}`);
    }
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of up) {
      n += (c as Buffer).length;
      if (n > MAX_SUMMARY_GZ_BYTES) {
        up.destroy();
        throw new UpstreamError(`larger than ${MAX_SUMMARY_GZ_BYTES} bytes`);
      }
      chunks.push(c as Buffer);
    }
    const text = (await gunzipAsync(Buffer.concat(chunks, n), { maxOutputLength: MAX_SUMMARY_BYTES })).toString('utf8');
    return parseSummaryFiles(text);
  }

  /** One request to a repository (through the proxy the environment names), redirects followed. */
  private async request(target: URL, method: 'GET' | 'HEAD', headers: Record<string, string>): Promise<http.IncomingMessage> {
    let url = target;
    for (let hop = 0; ; hop++) {
      const res = await this.requestOnce(url, method, headers);
      const location = res.headers.location;
      if (!res.statusCode || res.statusCode < 300 || res.statusCode > 399 || !location || res.statusCode === 304) return res;
      res.resume();
      if (hop >= MAX_REDIRECTS) throw new UpstreamError('too many redirects');
      const next = new URL(location, url);
      if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new UpstreamError(`redirected to a ${next.protocol} URL`);
      // Credentials go to the server they were written for, not to where it redirects.
      if (next.origin !== url.origin) {
        next.username = '';
        next.password = '';
      }
      url = next;
    }
  }

  private requestOnce(url: URL, method: string, headers: Record<string, string>): Promise<http.IncomingMessage> {
    let route = this.routes.get(url.origin);
    if (!route) {
      route = routeFor(url, { env: this.env });
      this.routes.set(url.origin, route);
    }
    const auth = url.username || url.password ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` : undefined;
    return new Promise((ok, fail) => {
      const req = (url.protocol === 'https:' ? https : http).request({
        method,
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port || (url.protocol === 'https:' ? 443 : 80),
        path: route.path(url),
        agent: route.agent,
        headers: { ...headers, host: url.host },
        ...(auth ? { auth } : {}),
      });
      req.setTimeout(IDLE_MS, () => req.destroy(new UpstreamError(`no answer for ${IDLE_MS / 1000} s`)));
      req.once('response', ok);
      req.once('error', fail);
      req.end();
    });
  }
}

/** An open file's bytes from the start, read by position (no stream holds the handle, so it closes when asked). */
async function* readAll(fh: FileHandle): AsyncGenerator<Buffer> {
  let pos = 0;
  for (;;) {
    const buf = Buffer.allocUnsafe(256 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (!bytesRead) return;
    pos += bytesRead;
    yield buf.subarray(0, bytesRead);
  }
}

function plain(res: http.ServerResponse, status: number, text: string): void {
  const body = `${text}\n`;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

/** The environment the tools that fetch packages get, and how the mirror is stopped. */
export interface PackageCacheOffer {
  /** PKG_PATH and/or PKG_REPOS pointing at the mirror, and no_proxy for it. */
  env: Record<string, string>;
  mirror: PackageMirror;
  /** Stops the mirror, evicts, and gives this build's figures. */
  finish(): Promise<PackageCacheStats>;
}

/** PKG_PATH (`;`-separated, as pkg_add reads it) with every http(s) entry turned into its mirror URL; undefined when none is. */
export function mirroredPkgPath(mirror: Pick<PackageMirror, 'offer'>, pkgPath: string): string | undefined {
  const entries = pkgPath.split(/[;\n]/).map((s) => s.trim()).filter(Boolean);
  const offered = entries.map((e) => mirror.offer(e));
  return offered.some(Boolean) ? entries.map((e, i) => offered[i] ?? e).join(';') : undefined;
}

/**
 * repositories.conf's repositories (lines starting with a URL scheme, in
 * order, as pkgin reads them) as PKG_REPOS with every http(s) one turned
 * into its mirror URL; undefined when none is, or when one could not be
 * passed in PKG_REPOS's space-separated form.
 */
export function mirroredRepos(mirror: Pick<PackageMirror, 'offer'>, conf: string): string | undefined {
  const repos: string[] = [];
  for (const line of conf.split('\n')) {
    const l = line.trim();
    if (/^(ftp|http|https|file):\/\//.test(l) && !repos.includes(l)) repos.push(l);
  }
  if (repos.some((r) => /\s/.test(r))) return undefined;
  const offered = repos.map((r) => mirror.offer(r));
  return offered.some(Boolean) ? repos.map((r, i) => offered[i] ?? r).join(' ') : undefined;
}

/** The image's repositories.conf, read as root would not follow it out of the image; undefined when there is none to read. */
async function readRepositoriesConf(root: string): Promise<string | undefined> {
  try {
    return await readSmallFile(await resolveInRoot(root, PKGIN_REPOSITORIES_CONF), MAX_REPOSITORIES_CONF_BYTES);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.debug(`package cache: pkgin's ${PKGIN_REPOSITORIES_CONF} not read (${oneLine(err)}): pkgin fetches without the cache`);
    return undefined;
  }
}

/**
 * Starts the mirror for a build's pkgadd: undefined (the tools fetch as
 * they always did) when the cache is off, unusable, or the image names no
 * http(s) repository. `pkgPath` is PKG_PATH as pkg_add sees it in the image.
 */
export async function offerPackageCache(o: {
  root: string;
  dir: string;
  lockPath: string;
  maxBytes: number;
  pkgPath: string | undefined;
  chrootEnv: Record<string, string>;
}): Promise<PackageCacheOffer | undefined> {
  if (o.maxBytes <= 0) return undefined;
  const cache = await PackageCache.open({ dir: o.dir, lockPath: o.lockPath, maxBytes: o.maxBytes });
  if (!cache) return undefined;
  const mirror = await PackageMirror.start(cache);
  const env: Record<string, string> = {};
  const pkgPath = o.pkgPath && mirroredPkgPath(mirror, o.pkgPath);
  if (pkgPath) env.PKG_PATH = pkgPath;
  const conf = await readRepositoriesConf(o.root);
  const repos = conf && mirroredRepos(mirror, conf);
  if (repos) env.PKG_REPOS = repos;
  if (!pkgPath && !repos) {
    await mirror.close();
    return undefined;
  }
  // The tools' proxy, if they have one, must not be asked for 127.0.0.1.
  if (Object.keys(o.chrootEnv).some((k) => /_proxy$/i.test(k) && !/^no_proxy$/i.test(k))) {
    const list = [o.chrootEnv.no_proxy ?? o.chrootEnv.NO_PROXY, '127.0.0.1'].filter(Boolean).join(',');
    env.no_proxy = list;
    if (o.chrootEnv.NO_PROXY !== undefined) env.NO_PROXY = list;
  }
  log.info(`package cache: ${cache.dir} (at most ${(o.maxBytes / 1024 ** 2).toFixed(0)} MiB)`);
  return {
    env,
    mirror,
    finish: async () => {
      await mirror.close();
      const stats = { ...mirror.stats, dropped: cache.dropped };
      try {
        stats.evicted = (await cache.evict()).files;
      } catch (err) {
        log.warn(`package cache: not evicted: ${oneLine(err)}`);
      }
      return stats;
    },
  };
}
