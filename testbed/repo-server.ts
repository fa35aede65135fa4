/**
 * A small static HTTP server for a sample pkgsrc repository. Directories get
 * an Apache-style autoindex because pkg_add finds packages by reading the
 * index of a PKG_PATH URL; files get Content-Length and Last-Modified, and
 * If-Modified-Since is honoured because pkgin and `pkg_admin
 * fetch-pkg-vulnerabilities -u` rely on it. Loopback only.
 *
 * As a script: node build/testbed/repo-server.js --dir D [--port P]
 * [--host H] [--write-sample [--with-newer]] prints the URL and serves until
 * SIGTERM/SIGINT. `--with-newer` adds the releases SAMPLE_NEWER_PACKAGES
 * stands for (try a `--locked` build against it). Packages are added or
 * withdrawn while it serves by writing the repository again
 * (testbed/packages `writeRepository`): every request reads the directory.
 */
import { createReadStream, readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Transform } from 'node:stream';
import { join, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface RepoServerOptions {
  dir: string;
  /** Must be a loopback address; default 127.0.0.1. */
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Called for every request (method and URL path), e.g. to count fetches in tests. */
  onRequest?: (method: string, path: string) => void;
  /**
   * A remote repository's link, for the bench: every answer waits
   * `latencyMs` before its first byte and a file's bytes go out at no more
   * than `bytesPerSecond`. Default: loopback speed.
   */
  link?: { latencyMs: number; bytesPerSecond: number };
}

export interface RepoServer {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:41234 */
  url: string;
  port: number;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

function htmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function humanSize(n: number): string {
  if (n < 1024) return String(n);
  const units = ['K', 'M', 'G'];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)}${units[u]}`;
}

function apacheDate(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}`;
}

function autoindex(urlPath: string, dir: string): string {
  const rows: string[] = [];
  const names = readdirSync(dir).sort();
  for (const name of names) {
    let st: Stats;
    try {
      st = statSync(join(dir, name));
    } catch {
      continue;
    }
    const label = st.isDirectory() ? `${name}/` : name;
    const href = encodeURIComponent(name) + (st.isDirectory() ? '/' : '');
    const shown = label.length > 50 ? `${label.slice(0, 47)}..&gt;` : htmlEscape(label);
    const padding = ' '.repeat(Math.max(1, 51 - Math.min(label.length, 50)));
    const size = st.isDirectory() ? '-' : humanSize(st.size);
    rows.push(`<a href="${href}">${shown}</a>${padding}${apacheDate(st.mtime)}  ${size.padStart(5)}  `);
  }
  const title = `Index of ${htmlEscape(urlPath)}`;
  const parent = urlPath === '/' ? '' : '<a href="../">Parent Directory</a>                                             -   \n';
  return (
    '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<html>\n <head>\n' +
    `  <title>${title}</title>\n </head>\n <body>\n<h1>${title}</h1>\n` +
    '<pre><a href="?C=N;O=D">Name</a>                                               ' +
    '<a href="?C=M;O=A">Last modified</a>      <a href="?C=S;O=A">Size</a>  <hr>' +
    parent +
    rows.map((r) => `${r}\n`).join('') +
    '<hr></pre>\n</body></html>\n'
  );
}

function contentType(name: string): string {
  if (name.endsWith('.tgz') || name.endsWith('.gz')) return 'application/x-gzip';
  if (name.endsWith('.xz')) return 'application/x-xz';
  if (name.endsWith('.bz2') || name.endsWith('.tbz')) return 'application/x-bzip2';
  if (name.endsWith('.html')) return 'text/html';
  return 'application/octet-stream';
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  const buf = Buffer.from(body);
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': String(buf.length), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : buf);
}

/** Paces a stream to `bytesPerSecond` (whole chunks, each sent once its share of time has passed). */
function paced(bytesPerSecond: number): Transform {
  const start = Date.now();
  let sent = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sent += chunk.length;
      setTimeout(() => cb(null, chunk), Math.max(0, start + (sent / bytesPerSecond) * 1000 - Date.now()));
    },
  });
}

function handler(root: string, onRequest?: RepoServerOptions['onRequest'], link?: RepoServerOptions['link']) {
  const serve = handle(root, link);
  return (req: IncomingMessage, res: ServerResponse): void => {
    onRequest?.(req.method ?? 'GET', (req.url ?? '/').split('?')[0]);
    if (link?.latencyMs) setTimeout(() => serve(req, res), link.latencyMs);
    else serve(req, res);
  };
}

function handle(root: string, link?: RepoServerOptions['link']) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const rawPath = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, '<h1>405 Method Not Allowed</h1>\n', { Allow: 'GET, HEAD' });
      return;
    }
    let urlPath: string;
    try {
      urlPath = decodeURIComponent(rawPath);
    } catch {
      send(res, 400, '<h1>400 Bad Request</h1>\n');
      return;
    }
    const target = resolve(root, `.${urlPath}`);
    if (target !== root && !target.startsWith(root + sep)) {
      send(res, 404, '<h1>404 Not Found</h1>\n');
      return;
    }
    let st: Stats;
    try {
      st = statSync(target);
    } catch {
      send(res, 404, `<h1>Not Found</h1>\n<p>The requested URL ${htmlEscape(urlPath)} was not found on this server.</p>\n`);
      return;
    }
    const lastModified = new Date(Math.floor(st.mtimeMs / 1000) * 1000);
    const ims = Date.parse(String(req.headers['if-modified-since'] ?? ''));
    if (!Number.isNaN(ims) && lastModified.getTime() <= ims) {
      res.writeHead(304, { 'Last-Modified': lastModified.toUTCString() });
      res.end();
      return;
    }
    if (st.isDirectory()) {
      if (!urlPath.endsWith('/')) {
        send(res, 301, '<h1>Moved Permanently</h1>\n', { Location: `${rawPath}/` });
        return;
      }
      send(res, 200, autoindex(urlPath, target), { 'Last-Modified': lastModified.toUTCString() });
      return;
    }
    if (!st.isFile()) {
      send(res, 404, '<h1>404 Not Found</h1>\n');
      return;
    }
    res.writeHead(200, {
      'Content-Type': contentType(target),
      'Content-Length': String(st.size),
      'Last-Modified': lastModified.toUTCString(),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const file = createReadStream(target).on('error', () => res.destroy());
    if (link?.bytesPerSecond) file.pipe(paced(link.bytesPerSecond)).pipe(res);
    else file.pipe(res);
  };
}

/** Serve `dir` over HTTP on a loopback address. */
export async function startRepoServer(opts: RepoServerOptions): Promise<RepoServer> {
  const host = opts.host ?? '127.0.0.1';
  if (!LOOPBACK.test(host)) throw new Error(`repo server binds to loopback only, not ${host}`);
  const root = realpathSync(resolve(opts.dir));
  if (!statSync(root).isDirectory()) throw new Error(`not a directory: ${opts.dir}`);
  const server: Server = createServer(handler(root, opts.onRequest, opts.link));
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', fail);
      ok();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}

async function cli(argv: string[]): Promise<void> {
  const args: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--write-sample' || a === '--with-newer') args[a.slice(2)] = true;
    else if (a.startsWith('--') && i + 1 < argv.length) args[a.slice(2)] = argv[++i]!;
    else throw new Error(`unexpected argument: ${a}`);
  }
  if (typeof args.dir !== 'string') {
    throw new Error('usage: repo-server --dir DIR [--port PORT] [--host 127.0.0.1] [--write-sample [--with-newer]]');
  }
  if (args['write-sample']) {
    const { writeRepository, SAMPLE_PACKAGES, SAMPLE_NEWER_PACKAGES } = await import('./packages.js');
    writeRepository(args.dir, args['with-newer'] ? [...SAMPLE_PACKAGES, ...SAMPLE_NEWER_PACKAGES] : SAMPLE_PACKAGES);
  }
  const server = await startRepoServer({
    dir: args.dir,
    host: typeof args.host === 'string' ? args.host : undefined,
    port: typeof args.port === 'string' ? Number(args.port) : undefined,
  });
  process.stdout.write(`${server.url}\n`);
  const stop = (): void => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

function isMain(): boolean {
  if (!process.argv[1]) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  cli(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`repo-server: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
