/**
 * A local IMGAPI for tests: the read side of sdc-imgapi 4.13 (GetImage,
 * ListImages, GetImageFile, Ping, ListChannels) as a standalone server with
 * the standard channel set answers it, plus fault injection and a request
 * log. Behaviour follows lib/images.js, lib/channels.js and lib/database.js
 * of TritonDataCenter/sdc-imgapi (imgapi.md §4, §6); where we add something
 * (Range support) it can be turned off.
 *
 * Extending: `server.route(method, pattern, name, ...handlers)` mounts more
 * endpoints; `server.store` holds the image records; `server.authenticate`
 * is the hook that decides `ctx.remoteUser`. The write side (HTTP Signature,
 * AdminImportImage, AddImageFile[FromUrl], Activate, ChannelAdd, Delete) is
 * mountAdminApi() in imgapi-admin.ts; `beforeHandle` and the `lost-answer`
 * fault let tests stop a client mid-call or lose an answer after the write.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { ImageManifest } from '../../src/image/manifest/types.js';

// ---- types

export interface Channel {
  name: string;
  description: string;
  default?: boolean;
}

/** etc/standalone/standard-channels.json */
export const STANDARD_CHANNELS: Channel[] = [
  { name: 'experimental', description: "feature-branch builds (warning: 'latest' isn't meaningful)" },
  { name: 'dev', description: 'main development branch builds', default: true },
  { name: 'staging', description: 'staging for release branch builds before a full release' },
  { name: 'release', description: 'release bits' },
  { name: 'support', description: 'MNX-supported release bits' },
];

export interface StoredFile {
  sha1: string;
  size: number;
  compression: string;
  dataset_guid?: string;
  /** base64 MD5, as IMGAPI stores it. */
  contentMD5: string;
  mtime: string;
  /** The bytes, or a path read on each request. */
  data: Buffer | string;
}

/** The server-side raw record (what the DB holds), not the served manifest. */
export interface StoredImage {
  raw: Record<string, unknown> & { uuid: string; activated: boolean; disabled: boolean; channels?: string[] };
  files: StoredFile[];
}

export type RouteName = 'Ping' | 'ListChannels' | 'ListImages' | 'GetImage' | 'GetImageFile' | (string & {});

export type FaultKind =
  /** Answer with this status and an IMGAPI error body (default 500 InternalError). */
  | { kind: 'status'; status?: number; code?: string; message?: string; retryAfter?: number }
  /** Answer with an HTML page (a proxy or login page), default status 200. */
  | { kind: 'html'; status?: number }
  /** Send headers with the full Content-Length, then `afterBytes` body bytes, then close the connection. */
  | { kind: 'drop'; afterBytes: number }
  /** Send headers and `afterBytes` body bytes, then go quiet (for `ms`, then close; default until the client leaves). */
  | { kind: 'stall'; afterBytes: number; ms?: number }
  /** Transport truncation: full Content-Length announced, half the body sent, connection closed. */
  | { kind: 'truncate' }
  /** A complete HTTP response whose JSON body is cut in half (Content-Length matches what is sent). */
  | { kind: 'bad-json' }
  /** Corrupt the body: byte at `at` (default the middle) is flipped. */
  | { kind: 'wrong-bytes'; at?: number }
  /**
   * The handler runs to the end (a write is done), then its answer is lost:
   * a proxy's HTML error page with `status` (default 504, haproxy giving up
   * on a slow backend), or with status 0 the connection is just closed.
   */
  | { kind: 'lost-answer'; status?: number }
  /** Answer with `status` (default 302) and `Location: location`, an empty body (a hostile or misconfigured front). */
  | { kind: 'redirect'; status?: number; location: string }
  /**
   * A 200 JSON answer of `bytes` bytes, streamed as the client reads it; with
   * `gzip`, sent `Content-Encoding: gzip` whatever the client asked (a
   * decompression bomb: a few KiB on the wire per MiB).
   */
  | { kind: 'huge'; bytes: number; gzip?: boolean };

export type Fault = FaultKind & {
  /** Only requests to these routes (default: any). */
  route?: RouteName | RouteName[];
  /** Only requests for this image uuid. */
  uuid?: string;
  /** Only requests with this `?action=` (UpdateImage: import, activate, channel-add). */
  action?: string;
  /** How many matching requests it applies to (default 1; Infinity for always). */
  times?: number;
};

export interface LoggedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  route?: string;
  /** `?action=` of the request, if any. */
  action?: string;
  status?: number;
  fault?: FaultKind['kind'];
}

export class RestError extends Error {
  constructor(
    readonly statusCode: number,
    readonly restCode: string,
    message: string,
    readonly errors?: Array<{ field: string; code: string; message?: string }>,
  ) {
    super(message);
  }
  body(): Record<string, unknown> {
    return { code: this.restCode, message: this.message, ...(this.errors ? { errors: this.errors } : {}) };
  }
}

export interface RequestContext {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  server: ImgapiTestServer;
  url: URL;
  /** First value of each query param (restify's req.query, arrays for repeats). */
  query: Record<string, string | string[]>;
  params: Record<string, string>;
  /** The Accept-Version range in effect ('~1' when the header is missing). */
  version: string;
  /** Set by reqChannel: undefined = all channels (`*`) or channels disabled. */
  channel?: Channel;
  remoteUser?: string;
  image?: StoredImage;
  fault?: FaultKind;
}

export type Handler = (ctx: RequestContext) => void | 'next' | Promise<void | 'next'>;

interface Route {
  method: string;
  pattern: RegExp;
  keys: string[];
  name: string;
  handlers: Handler[];
}

export interface ImgapiTestServerOptions {
  /** Channel set; `null` for a server without channels. Default: the standard set. */
  channels?: Channel[] | null;
  /** IMGAPI mode: 'private' (updates.tritondatacenter.com), 'public' (images.smartos.org) or 'dc'. */
  mode?: 'private' | 'public' | 'dc';
  /** Advertise and honour byte ranges on GetImageFile (real IMGAPI does not). Default true. */
  ranges?: boolean;
  /** Answer with this server version in /ping. */
  version?: string;
  /** Serve under this path prefix (e.g. '/imgapi'), as behind a path-routing proxy. */
  basePath?: string;
  /** Serve HTTPS with this key and certificate. */
  tls?: { key: string | Buffer; cert: string | Buffer };
}

export interface AddImageOptions {
  channels?: string[];
  /** 'active' (default), 'unactivated', 'disabled'. Overrides manifest.state. */
  state?: 'active' | 'unactivated' | 'disabled';
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SERVER_VERSIONS = ['1.0.0', '2.0.0'];

// ---- Accept-Version (restify 4 semantics, reduced to the ranges clients send)

type Triple = [number, number, number];

function cmp(a: Triple, b: Triple): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

interface Bounds {
  lo: Triple;
  loIncl: boolean;
  hi?: Triple;
  hiIncl?: boolean;
}

/** Bounds of a range ('*', '~2', '^1.2', '2.x', '>=2', '2.0.0'); undefined = not understood. */
function bounds(range: string): Bounds | undefined {
  const r = range.trim();
  if (r === '*' || r === 'x' || r === '') return { lo: [0, 0, 0], loIncl: true };
  const m = /^(~|\^|>=|<=|>|<|=)?\s*v?(\d+)(?:\.(\d+|x|\*))?(?:\.(\d+|x|\*))?$/.exec(r);
  if (!m) return undefined;
  const op = m[1] ?? '';
  const num = (x: string | undefined): number | undefined => (x === undefined || x === 'x' || x === '*' ? undefined : Number(x));
  const major = Number(m[2]);
  const minor = num(m[3]);
  const patch = num(m[4]);
  const lo: Triple = [major, minor ?? 0, patch ?? 0];
  switch (op) {
    case '>=': return { lo, loIncl: true };
    case '>': return { lo, loIncl: false };
    case '<=': return { lo: [0, 0, 0], loIncl: true, hi: lo, hiIncl: true };
    case '<': return { lo: [0, 0, 0], loIncl: true, hi: lo, hiIncl: false };
  }
  if (op === '^') return { lo, loIncl: true, hi: major > 0 || minor === undefined ? [major + 1, 0, 0] : [0, minor + 1, 0], hiIncl: false };
  if (op === '~' || patch === undefined) return { lo, loIncl: true, hi: minor === undefined ? [major + 1, 0, 0] : [major, minor + 1, 0], hiIncl: false };
  return { lo, loIncl: true, hi: lo, hiIncl: true };
}

function triple(ver: string): Triple {
  return ver.split('.').map(Number) as Triple;
}

/** Does `ver` satisfy `range`? undefined = range not understood. */
export function satisfies(range: string, ver: string): boolean | undefined {
  const b = bounds(range);
  if (!b) return undefined;
  const v = triple(ver);
  const lo = cmp(v, b.lo);
  if (lo < 0 || (lo === 0 && !b.loIncl)) return false;
  if (!b.hi) return true;
  const hi = cmp(v, b.hi);
  return hi < 0 || (hi === 0 && !!b.hiIncl);
}

/** IMGAPI's utils.semverGter: `range === '*' || satisfies(ver, range) || ltr(ver, range)`. */
function semverGter(range: string, ver: string): boolean {
  if (range.trim() === '*' || satisfies(range, ver)) return true;
  const b = bounds(range);
  if (!b) return false;
  const lo = cmp(triple(ver), b.lo);
  return lo < 0 || (lo === 0 && !b.loIncl);
}

// ---- the server

export class ImgapiTestServer {
  readonly store = new Map<string, StoredImage>();
  readonly requests: LoggedRequest[] = [];
  readonly faults: Fault[] = [];
  readonly channels: Channel[] | null;
  readonly mode: 'private' | 'public' | 'dc';
  ranges: boolean;
  readonly serverVersion: string;
  readonly basePath: string;
  private readonly secure: boolean;
  /** Decides the authenticated user of a request; the write side plugs HTTP Signature in here. */
  authenticate: (req: http.IncomingMessage) => string | undefined | Promise<string | undefined> = () => undefined;
  /** Runs after authentication and fault selection, before the handlers (e.g. to kill a client mid-call). */
  beforeHandle?: (ctx: RequestContext) => void | Promise<void>;

  private readonly routes: Route[] = [];
  private readonly http: http.Server | https.Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private publishedClock = Date.parse('2024-01-01T00:00:00.000Z');
  private port = 0;

  constructor(opts: ImgapiTestServerOptions = {}) {
    this.channels = opts.channels === undefined ? STANDARD_CHANNELS : opts.channels;
    this.mode = opts.mode ?? 'private';
    this.ranges = opts.ranges ?? true;
    this.serverVersion = opts.version ?? '4.13.1';
    this.basePath = (opts.basePath ?? '').replace(/\/$/, '');
    this.secure = !!opts.tls;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => void this.dispatch(req, res);
    this.http = opts.tls ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, handler) : http.createServer(handler);
    this.http.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.mountReadApi();
  }

  get url(): string {
    return `${this.secure ? 'https' : 'http'}://127.0.0.1:${this.port}${this.basePath}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.http.address() as AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  get defaultChannel(): Channel | undefined {
    return this.channels?.find((c) => c.default);
  }

  /** Adds a fault for upcoming requests. */
  addFault(fault: Fault): Fault {
    this.faults.push({ times: 1, ...fault });
    return fault;
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  requestsTo(route: RouteName): LoggedRequest[] {
    return this.requests.filter((r) => r.route === route);
  }

  /**
   * Adds an image as if imported, given a file and activated. `manifest.files[0]`
   * supplies compression/dataset_guid; sha1, size and MD5 are computed from the file
   * (a manifest sha1/size that disagrees is a test bug and throws).
   */
  async addImage(manifest: ImageManifest, file?: Buffer | string, opts: AddImageOptions = {}): Promise<StoredImage> {
    const state = opts.state ?? (manifest.state as AddImageOptions['state']) ?? 'active';
    const raw: StoredImage['raw'] = {
      ...structuredClone(manifest),
      activated: state !== 'unactivated',
      disabled: state === 'disabled',
      state,
      owner: manifest.owner ?? '00000000-0000-0000-0000-000000000000',
      public: manifest.public ?? false,
    };
    if (raw.activated && !raw.published_at) {
      raw.published_at = new Date((this.publishedClock += 1000)).toISOString();
    }
    delete raw.files;
    if (this.channels) {
      const channels = opts.channels ?? manifest.channels ?? [this.defaultChannel!.name];
      for (const c of channels) {
        if (!this.channels.some((k) => k.name === c)) throw new Error(`test server: unknown channel ${c}`);
      }
      raw.channels = [...channels];
    } else {
      delete raw.channels;
    }
    const files: StoredFile[] = [];
    if (file !== undefined) {
      const bytes = typeof file === 'string' ? await readFile(file) : file;
      const sha1 = createHash('sha1').update(bytes).digest('hex');
      const m0 = manifest.files?.[0];
      if (m0 && (m0.sha1 !== sha1 || m0.size !== bytes.length)) {
        throw new Error(`test server: manifest files[0] (${m0.sha1}, ${m0.size}) does not match the file (${sha1}, ${bytes.length})`);
      }
      files.push({
        sha1,
        size: bytes.length,
        compression: m0?.compression ?? 'gzip',
        ...(m0?.dataset_guid ? { dataset_guid: m0.dataset_guid } : {}),
        contentMD5: createHash('md5').update(bytes).digest('base64'),
        mtime: new Date(this.publishedClock).toISOString(),
        data: file,
      });
    }
    const image: StoredImage = { raw, files };
    this.store.set(manifest.uuid, image);
    return image;
  }

  /** The manifest as GetImage would serve it (Image.prototype.serialize). */
  serialize(image: StoredImage, acceptVersion = '~2'): ImageManifest {
    const r = image.raw as Record<string, any>;
    const data: Record<string, unknown> = {
      v: r.v,
      uuid: r.uuid,
      owner: r.owner,
      name: r.name,
      version: r.version,
      state: calcState(image),
      disabled: r.disabled,
      public: r.public,
      published_at: r.published_at,
      type: r.type,
      os: r.os,
      files: image.files.map((f) => ({ sha1: f.sha1, size: f.size, compression: f.compression, dataset_guid: f.dataset_guid })),
    };
    if (r.acl?.length) data.acl = r.acl;
    for (const k of ['description', 'homepage', 'eula', 'urn', 'requirements', 'users', 'inherited_directories', 'origin', 'nic_driver', 'disk_driver', 'cpu_type']) {
      if (r[k]) data[k] = r[k];
    }
    if (r.icon) data.icon = true;
    if (r.generate_passwords !== undefined) data.generate_passwords = r.generate_passwords;
    if (r.image_size !== undefined) data.image_size = r.image_size;
    if (r.tags) data.tags = r.tags;
    if (this.mode !== 'public') {
      if (r.billing_tags?.length) data.billing_tags = r.billing_tags;
      if (r.traits && Object.keys(r.traits).length) data.traits = r.traits;
    }
    if (r.state === 'failed' && r.error) data.error = r.error;
    // JSON drops undefined values, as restify's JSON.stringify did.
    const out = JSON.parse(JSON.stringify(data)) as ImageManifest;
    if (semverGter(acceptVersion, '2.0.0') && r.channels) out.channels = r.channels;
    return out;
  }

  // ---- routing

  /** Mounts a route; `pattern` like '/images/:uuid/file'. Handlers run in order until one does not return 'next'. */
  route(method: string, pattern: string, name: string, ...handlers: Handler[]): void {
    const keys: string[] = [];
    const re = pattern.replace(/:([A-Za-z_]+)/g, (_m, k: string) => (keys.push(k), '([^/]+)'));
    this.routes.push({ method, pattern: new RegExp(`^${re}/?$`), keys, name, handlers });
  }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const entry: LoggedRequest = { method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers } };
    this.requests.push(entry);
    res.on('finish', () => (entry.status = res.statusCode));
    res.on('close', () => (entry.status ??= res.statusCode));
    res.setHeader('Server', 'imgapi-test');
    res.setHeader('x-request-id', String(this.requests.length));
    const url = new URL(req.url ?? '/', 'http://x');
    const prefixed = !this.basePath || url.pathname === this.basePath || url.pathname.startsWith(`${this.basePath}/`);
    const path = prefixed ? url.pathname.slice(this.basePath.length) || '/' : `\0${url.pathname}`;
    const matches = this.routes.filter((r) => r.pattern.test(path));
    const route = matches.find((r) => r.method === req.method);
    entry.route = route?.name;
    entry.action = url.searchParams.get('action') ?? undefined;
    const ctx: RequestContext = { req, res, server: this, url, query: parseQuery(url), params: {}, version: '~1' };
    try {
      if (!route) {
        if (matches.length) throw new RestError(405, 'MethodNotAllowedError', `${req.method} is not allowed`);
        throw new RestError(404, 'ResourceNotFound', `${url.pathname} does not exist`);
      }
      const m = route.pattern.exec(path)!;
      route.keys.forEach((k, i) => (ctx.params[k] = decodeURIComponent(m[i + 1])));
      // No Accept-Version means an IMGAPI 1.x-era client: '~1' (app.js server.pre).
      const accept = req.headers['accept-version'];
      if (typeof accept === 'string') {
        if (!SERVER_VERSIONS.some((v) => satisfies(accept, v))) {
          throw new RestError(400, 'InvalidVersion', `${accept} is not supported by ${req.method} ${path}`);
        }
        ctx.version = accept;
      }
      ctx.remoteUser = await this.authenticate(req);
      ctx.fault = this.takeFault(route.name, ctx.params.uuid, entry.action);
      if (ctx.fault) entry.fault = ctx.fault.kind;
      if (ctx.fault?.kind === 'status') {
        const f = ctx.fault;
        const status = f.status ?? 500;
        if (f.retryAfter !== undefined) res.setHeader('Retry-After', String(f.retryAfter));
        throw new RestError(status, f.code ?? (status === 503 ? 'ServiceUnavailable' : status === 429 ? 'TooManyRequests' : 'InternalError'), f.message ?? 'boom');
      }
      await this.beforeHandle?.(ctx);
      if (ctx.fault?.kind === 'redirect') {
        res.writeHead(ctx.fault.status ?? 302, { Location: ctx.fault.location, 'Content-Length': 0 }).end();
        return;
      }
      if (ctx.fault?.kind === 'huge') {
        sendHuge(res, ctx.fault.bytes, !!ctx.fault.gzip);
        return;
      }
      if (ctx.fault?.kind === 'html') {
        const page = Buffer.from('<html><head><title>Proxy</title></head><body><h1>Please log in</h1></body></html>\n');
        res.writeHead(ctx.fault.status ?? 200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': page.length });
        res.end(page);
        return;
      }
      for (const h of route.handlers) {
        if ((await h(ctx)) !== 'next') break;
      }
    } catch (err) {
      const e = err instanceof RestError ? err : new RestError(500, 'InternalError', (err as Error).message);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      this.sendJson(ctx, e.statusCode, e.body());
    }
  }

  private takeFault(route: string, uuid: string | undefined, action: string | undefined): FaultKind | undefined {
    const i = this.faults.findIndex((f) => {
      const routes = f.route === undefined ? undefined : Array.isArray(f.route) ? f.route : [f.route];
      return (!routes || routes.includes(route)) && (!f.uuid || f.uuid === uuid) && (!f.action || f.action === action);
    });
    if (i < 0) return undefined;
    const f = this.faults[i];
    f.times = (f.times ?? 1) - 1;
    if (f.times <= 0) this.faults.splice(i, 1);
    return f;
  }

  /** JSON as restify formats it (2-space indent) with Content-MD5, subject to body faults. */
  sendJson(ctx: RequestContext, status: number, body: unknown, headers: Record<string, string> = {}): void {
    let data = Buffer.from(JSON.stringify(body, null, 2));
    const { res } = ctx;
    if (ctx.fault?.kind === 'lost-answer') {
      const status = ctx.fault.status ?? 504;
      if (!status) return void res.destroy();
      const page = Buffer.from(`<html><body><h1>${status} Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n`);
      res.writeHead(status, { 'Content-Type': 'text/html', 'Content-Length': page.length, 'Cache-Control': 'no-cache' });
      res.end(page);
      return;
    }
    res.statusCode = status;
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    res.setHeader('Content-Type', 'application/json');
    if (ctx.fault?.kind === 'bad-json') data = data.subarray(0, Math.floor(data.length / 2));
    res.setHeader('Content-Length', data.length);
    res.setHeader('Content-MD5', createHash('md5').update(data).digest('base64'));
    this.sendBody(ctx, data, data.length);
  }

  /** Writes `body` (announced as `announced` bytes), applying drop/stall/truncate/wrong-bytes faults. */
  sendBody(ctx: RequestContext, body: Buffer | Readable, announced: number): void {
    const { res, fault } = ctx;
    let cut: number | undefined;
    let stall = false;
    if (fault?.kind === 'drop') cut = fault.afterBytes;
    else if (fault?.kind === 'stall') {
      cut = fault.afterBytes;
      stall = true;
    }
    else if (fault?.kind === 'truncate') cut = Math.floor(announced / 2);
    const flipAt = fault?.kind === 'wrong-bytes' ? (fault.at ?? Math.floor(announced / 2)) : undefined;
    res.flushHeaders();
    const source = Buffer.isBuffer(body) ? Readable.from([body]) : body;
    let sent = 0;
    const out = async function* (): AsyncGenerator<Buffer> {
      for await (const c of source) {
        let chunk = Buffer.from(c as Buffer);
        if (flipAt !== undefined && flipAt >= sent && flipAt < sent + chunk.length) {
          chunk = Buffer.from(chunk);
          chunk[flipAt - sent] ^= 0xff;
        }
        if (cut !== undefined && sent + chunk.length >= cut) {
          const part = chunk.subarray(0, cut - sent);
          sent += part.length;
          if (part.length) yield part;
          return;
        }
        sent += chunk.length;
        // Small chunks so that drops and stalls land where a test expects.
        for (let o = 0; o < chunk.length; o += 64 * 1024) yield chunk.subarray(o, o + 64 * 1024);
      }
    };
    void (async () => {
      try {
        await pipeline(Readable.from(out()), res, { end: cut === undefined });
      } catch {
        res.destroy();
        return;
      }
      if (cut === undefined) return;
      if (!stall) {
        // end(), not destroy(): flush what was written, then FIN mid-body.
        res.socket?.end();
        return;
      }
      const ms = fault?.kind === 'stall' ? fault.ms : undefined;
      if (ms !== undefined) {
        const t = setTimeout(() => (this.timers.delete(t), res.socket?.destroy()), ms);
        this.timers.add(t);
      }
    })();
  }

  // ---- the read API

  private mountReadApi(): void {
    this.route('GET', '/ping', 'Ping', (ctx) => {
      const data: Record<string, unknown> = { ping: 'pong', version: this.serverVersion, imgapi: true };
      if (this.mode === 'dc' || ctx.remoteUser) data.pid = process.pid;
      if (ctx.remoteUser) data.user = ctx.remoteUser;
      this.sendJson(ctx, 200, data);
    });
    if (this.channels) {
      this.route('GET', '/channels', 'ListChannels', (ctx) => this.sendJson(ctx, 200, this.channels));
    }
    this.route('GET', '/images', 'ListImages', reqChannel(true), (ctx) => this.listImages(ctx));
    this.route('GET', '/images/:uuid', 'GetImage', reqValidUuid, reqChannel(true), reqGetImage, (ctx) => {
      const body = this.serialize(ctx.image!, ctx.version);
      const etag = createHash('sha1').update(JSON.stringify(body)).digest('hex');
      if (ctx.req.headers['if-none-match'] === etag) {
        ctx.res.writeHead(304, { Etag: etag }).end();
        return;
      }
      this.sendJson(ctx, 200, body, { Etag: etag });
    });
    this.route('GET', '/images/:uuid/file', 'GetImageFile', reqValidUuid, reqChannel(true), reqGetImage, (ctx) => this.getImageFile(ctx));
  }

  private listImages(ctx: RequestContext): void {
    const q = ctx.query;
    const one = (k: string): string | undefined => (Array.isArray(q[k]) ? (q[k])[0] : (q[k]));
    // Non-dc servers show only active images to unauthenticated callers (limitToActive).
    const limitToActive = this.mode !== 'dc' && ctx.remoteUser === undefined;
    const state = one('state');
    let want: (img: StoredImage) => boolean;
    if (!state || state === 'active') want = (i) => calcState(i) === 'active';
    else if (state === 'all') want = limitToActive ? (i) => calcState(i) === 'active' : () => true;
    else if (['disabled', 'unactivated', 'creating', 'failed'].includes(state)) {
      if (limitToActive) return this.sendJson(ctx, 200, []);
      want = (i) => calcState(i) === state;
    } else {
      throw new RestError(422, 'InvalidParameter', `invalid state: "${state}"`, [{ field: 'state', code: 'Invalid' }]);
    }
    let limit: number | undefined;
    if (one('limit')) {
      limit = Number(one('limit'));
      if (Number.isNaN(limit)) throw new RestError(422, 'InvalidParameter', `invalid limit: "${one('limit')}"`, [{ field: 'state', code: 'Invalid' }]);
    }
    const sortParam = (one('sort') ?? 'published_at').split('.');
    if (sortParam[0] !== 'published_at') {
      throw new RestError(422, 'InvalidParameter', `invalid 'sort': not a valid sorting attribute: '${sortParam[0]}'`, [{ field: 'sort', code: 'Invalid' }]);
    }
    const asc = !sortParam[1] || sortParam[1].toLowerCase() === 'asc';
    let marker: string | undefined;
    const m = one('marker');
    if (m && UUID_RE.test(m)) {
      const img = this.store.get(m);
      if (!img) throw new RestError(404, 'ResourceNotFound', `image ${m} not found`);
      marker = img.raw.published_at as string | undefined;
    } else if (m) {
      const d = new Date(m);
      if (Number.isNaN(d.getTime())) {
        throw new RestError(422, 'InvalidParameter', `invalid value for "marker" param: ${JSON.stringify(m)} is not a UUID or date string`, [{ field: 'marker', code: 'Invalid' }]);
      }
      marker = d.toISOString();
    }
    const str = (v: unknown): string => String(v);
    const tags = Object.keys(q).filter((k) => k.startsWith('tag.')).map((k) => [k.slice(4), one(k)!] as const);
    const billing = q.billing_tag === undefined ? undefined : ([] as string[]).concat(q.billing_tag);
    const pub = one('public');
    const hits = [...this.store.values()].filter((img) => {
      const r = img.raw as Record<string, any>;
      if (!want(img)) return false;
      if (ctx.channel && !r.channels?.includes(ctx.channel.name)) return false;
      for (const f of ['name', 'version']) {
        const v = one(f);
        if (v === undefined) continue;
        // '~' prefix: substring match (LocalDatabase.search '~str').
        if (v.startsWith('~') ? !str(r[f]).includes(v.slice(1)) : str(r[f]) !== v) return false;
      }
      for (const f of ['owner', 'os']) if (one(f) !== undefined && str(r[f]) !== one(f)) return false;
      const type = one('type');
      // '!' prefix: exclude that type ('!str').
      if (type !== undefined && (type.startsWith('!') ? str(r.type) === type.slice(1) : str(r.type) !== type)) return false;
      if (pub !== undefined && str(r.public) !== String(pub === 'true')) return false;
      for (const [k, v] of tags) if (str(r.tags?.[k]) !== v) return false;
      if (billing && !billing.every((b) => r.billing_tags?.includes(b))) return false;
      if (marker && r.published_at !== undefined) {
        if (asc ? r.published_at < marker : r.published_at > marker) return false;
      }
      return true;
    });
    const time = (i: StoredImage): number => (i.raw.published_at ? Date.parse(i.raw.published_at as string) : 0);
    hits.sort((a, b) => (asc ? 1 : -1) * (time(a) - time(b)));
    const out = hits.slice(0, limit ?? hits.length).map((i) => this.serialize(i, ctx.version));
    this.sendJson(ctx, 200, out);
  }

  private getImageFile(ctx: RequestContext): void {
    const image = ctx.image!;
    if (image.files.length === 0) throw new RestError(404, 'ResourceNotFound', `image "${image.raw.uuid}" has no file`);
    const index = parseInt(String(ctx.query.index ?? ''), 10) || 0;
    const file = image.files[index];
    if (!file) throw new RestError(404, 'ResourceNotFound', `image "${image.raw.uuid}" has no file at index ${index}`);
    const { req, res } = ctx;
    res.setHeader('Etag', file.sha1);
    res.setHeader('Last-Modified', new Date(file.mtime).toUTCString());
    res.setHeader('Content-Type', 'application/octet-stream');
    if (req.headers['if-none-match'] === file.sha1) {
      res.writeHead(304).end();
      return;
    }
    let start = 0;
    let end = file.size - 1;
    let partial = false;
    const range = req.headers.range;
    const ifRange = req.headers['if-range'];
    if (this.ranges) {
      res.setHeader('Accept-Ranges', 'bytes');
      if (range && (ifRange === undefined || ifRange === file.sha1 || ifRange === `"${file.sha1}"`)) {
        const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
        if (m && (m[1] || m[2])) {
          if (m[1]) {
            start = Number(m[1]);
            if (m[2]) end = Math.min(Number(m[2]), file.size - 1);
          } else {
            start = Math.max(0, file.size - Number(m[2]));
          }
          if (start >= file.size || start > end) {
            res.writeHead(416, { 'Content-Range': `bytes */${file.size}`, 'Content-Length': 0 }).end();
            return;
          }
          partial = true;
        }
      }
    }
    const length = end - start + 1;
    res.statusCode = partial ? 206 : 200;
    res.setHeader('Content-Length', length);
    if (partial) res.setHeader('Content-Range', `bytes ${start}-${end}/${file.size}`);
    else res.setHeader('Content-MD5', file.contentMD5);
    const body = Buffer.isBuffer(file.data)
      ? file.data.subarray(start, end + 1)
      : length === 0 ? Buffer.alloc(0) : createReadStream(file.data, { start, end });
    this.sendBody(ctx, body, length);
  }
}

/** `{"pad":"xxx…"}` of `bytes` bytes, produced only as fast as the client reads it. */
export function hugeJson(bytes: number): Readable {
  const head = Buffer.from('{"pad":"');
  const tail = Buffer.from('"}');
  const chunk = Buffer.alloc(64 * 1024, 0x78);
  let left = Math.max(0, bytes - head.length - tail.length);
  let started = false;
  return new Readable({
    read() {
      if (!started) {
        started = true;
        this.push(head);
        return;
      }
      if (left <= 0) {
        this.push(tail);
        this.push(null);
        return;
      }
      const n = Math.min(left, chunk.length);
      left -= n;
      this.push(chunk.subarray(0, n));
    },
  });
}

function sendHuge(res: http.ServerResponse, bytes: number, gzip: boolean): void {
  res.writeHead(200, gzip ? { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' } : { 'Content-Type': 'application/json', 'Content-Length': bytes });
  const body = hugeJson(bytes);
  const done = (): void => void res.destroy();
  if (gzip) pipeline(body, createGzip({ level: 9 }), res).catch(done);
  else pipeline(body, res).catch(done);
}

// ---- middleware (exported for the write side)

function calcState(img: StoredImage): string {
  const s = img.raw.state;
  if (s === 'creating' || s === 'failed') return s;
  return !img.raw.activated ? 'unactivated' : img.raw.disabled ? 'disabled' : 'active';
}

function parseQuery(url: URL): Record<string, string | string[]> {
  const q: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) {
    const cur = q[k];
    q[k] = cur === undefined ? v : ([] as string[]).concat(cur, v);
  }
  return q;
}

export const reqValidUuid: Handler = (ctx) => {
  // Real message is `req.url + ' does not exist'` (query included).
  if (!UUID_RE.test(ctx.params.uuid ?? '')) throw new RestError(404, 'ResourceNotFound', `${ctx.req.url} does not exist`);
  return 'next';
};

/** channels.reqChannel / reqChannelAllowStar. */
export function reqChannel(allowStar: boolean): Handler {
  return (ctx) => {
    const channels = ctx.server.channels;
    const name = ctx.query.channel;
    if (!channels) return 'next';
    if (!name) {
      const def = ctx.server.defaultChannel;
      if (!def) {
        throw new RestError(422, 'ValidationFailed', 'channel not specified and the server has no default channel', [{ field: 'channel', code: 'MissingParameter' }]);
      }
      ctx.channel = def;
    } else if (allowStar && name === '*') {
      // all channels: leave ctx.channel unset
    } else {
      const c = typeof name === 'string' ? channels.find((k) => k.name === name) : undefined;
      if (!c) throw new RestError(422, 'ValidationFailed', `unknown channel: ${String(name)}`, [{ field: 'channel', code: 'Invalid' }]);
      ctx.channel = c;
    }
    return 'next';
  };
}

/** images.reqGetImage (without `account=`): sets ctx.image. */
export const reqGetImage: Handler = (ctx) => {
  const uuid = ctx.params.uuid;
  const image = ctx.server.store.get(uuid);
  // Two different messages, as the real server: not in the DB vs. not in the channel.
  if (!image) throw new RestError(404, 'ResourceNotFound', `image ${uuid} not found`);
  if (ctx.channel && !image.raw.channels?.includes(ctx.channel.name)) throw new RestError(404, 'ResourceNotFound', 'image not found');
  ctx.image = image;
  return 'next';
};

export async function startImgapiServer(opts: ImgapiTestServerOptions = {}): Promise<ImgapiTestServer> {
  return new ImgapiTestServer(opts).start();
}
