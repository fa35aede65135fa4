/**
 * A small read-side IMGAPI client (imgapi.md §4) over got: GetImage,
 * ListImages, GetImageFile, Ping. It speaks as sdc-clients/imgadm do
 * (§2.1–2.2, §5.1): the channel comes from `?channel=` in the URL or the
 * `channel` option, `Accept-Version: ~2` so that `channels` is served.
 * GETs are retried with backoff on connection errors, timeouts, 5xx and
 * 429; 4xx answers fail at once. Error bodies become one-line BuildErrors.
 * Proxies come from http_proxy/https_proxy/no_proxy (got has none built in).
 */
import http from 'node:http';
import https from 'node:https';
import net, { isIP, type Socket } from 'node:net';
import querystring from 'node:querystring';
import type { Duplex, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import got, { RequestError, TimeoutError, type Agents, type Response } from 'got';
import { BuildError } from '../core/errors.js';
import { interruptSignal } from '../core/interrupt.js';
import { log } from '../core/log.js';
import { userAgent } from '../core/package.js';
import type { ImageManifest } from '../image/manifest/types.js';

export interface ImgapiClientOptions {
  /** IMGAPI base URL; a `?channel=` in it is taken as the channel, a path is kept as a base path. */
  url: string;
  /** Wins over `?channel=` in the URL. Unset: no channel param, the server's default channel. */
  channel?: string;
  userAgent?: string;
  /** JSON calls: whole request; file streams: until the response headers. Default 30 s. */
  timeoutMs?: number;
  /** TCP (and proxy CONNECT) connect timeout. Default 10 s, as updates-imgadm. */
  connectTimeoutMs?: number;
  /** Retries after the first attempt, for GETs. Default 4. */
  retries?: number;
  /** First backoff delay, doubled each retry up to retryMaxDelayMs. Default 500 ms. */
  retryDelayMs?: number;
  retryMaxDelayMs?: number;
  /** No retry starts once this much time has passed since the first attempt. Default 60 s. */
  retryBudgetMs?: number;
  /** Skip TLS verification (IMGADM_INSECURE / --insecure). */
  insecure?: boolean;
  /** Extra CA certificate(s) to trust. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Where http_proxy/https_proxy/no_proxy are read. Default process.env. */
  env?: NodeJS.ProcessEnv;
}

export const CLIENT_DEFAULTS = {
  timeoutMs: 30_000,
  connectTimeoutMs: 10_000,
  retries: 4,
  retryDelayMs: 500,
  retryMaxDelayMs: 8_000,
  retryBudgetMs: 60_000,
} as const;

/** ListImages filters (§4.3); values go to the query string as given. */
export type ListImagesFilters = Record<string, string | number | boolean | string[] | undefined>;

export interface FileStreamOptions {
  /** Ask for the bytes from here on (`Range: bytes=N-`). */
  offset?: number;
  /** `If-Range`: the Etag of an earlier response, so a changed file is not spliced. */
  ifRange?: string;
  channel?: string;
  signal?: AbortSignal;
}

export interface ImageFileResponse {
  /** The body; not yet flowing. Destroy it to abandon the download. */
  stream: Readable;
  statusCode: number;
  /** Body length (Content-Length), when the server sent one. */
  contentLength?: number;
  /** The server said `Accept-Ranges: bytes`. */
  acceptRanges: boolean;
  /** For a 206: the part this body carries. */
  range?: { start: number; end: number; total: number };
  etag?: string;
  contentMd5?: string;
}

/** An IMGAPI call failed. `statusCode`/`restCode` are set when the server answered. */
export class ImgapiError extends BuildError {
  readonly statusCode?: number;
  readonly restCode?: string;
  readonly body?: unknown;
  /** Worth another attempt (network trouble, 5xx, 429). */
  readonly retryable: boolean;
  /** Server-suggested wait (Retry-After), ms. */
  readonly retryAfterMs?: number;
  constructor(
    message: string,
    opts: { statusCode?: number; restCode?: string; body?: unknown; retryable?: boolean; retryAfterMs?: number; hint?: string; cause?: unknown } = {},
  ) {
    super(message, { hint: opts.hint, cause: opts.cause });
    this.statusCode = opts.statusCode;
    this.restCode = opts.restCode;
    this.body = opts.body;
    this.retryable = opts.retryable ?? false;
    this.retryAfterMs = opts.retryAfterMs;
  }
}

/** Parses an IMGAPI URL as sdc-clients does (§2.1): channel out of the query, base path without trailing '/'. */
export function parseImgapiUrl(spec: string): { origin: URL; basePath: string; channel?: string } {
  let u: URL;
  try {
    u = new URL(spec);
  } catch {
    throw new BuildError(`invalid IMGAPI URL ${JSON.stringify(redactUrl(spec))}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new BuildError(`invalid IMGAPI URL ${redactUrl(spec)}: must be http:// or https://`);
  }
  const channel = u.searchParams.get('channel') || undefined;
  let basePath = u.pathname;
  if (basePath.endsWith('/')) basePath = basePath.slice(0, -1);
  const origin = new URL(u.origin);
  origin.username = u.username;
  origin.password = u.password;
  return { origin, basePath, channel };
}

/** A URL fit for messages: no credentials, no query (it may carry signatures). */
export function redactUrl(spec: string | URL): string {
  try {
    const u = new URL(String(spec));
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return String(spec).replace(/\/\/[^/@]*@/, '//').replace(/[?#].*$/, '');
  }
}

export class ImgapiClient {
  /** Scheme, host and port (with credentials, if the URL had any). */
  protected readonly origin: URL;
  readonly basePath: string;
  readonly channel?: string;
  /** The URL for messages: no credentials, no query. */
  readonly url: string;
  protected readonly opts: Required<Omit<ImgapiClientOptions, 'channel' | 'userAgent' | 'ca' | 'env' | 'insecure'>> &
    Pick<ImgapiClientOptions, 'ca' | 'insecure'>;
  protected readonly userAgent: string;
  protected readonly agents: Agents;
  readonly proxy?: string;

  constructor(options: ImgapiClientOptions) {
    const parsed = parseImgapiUrl(options.url);
    this.origin = parsed.origin;
    this.basePath = parsed.basePath;
    this.channel = options.channel || parsed.channel;
    this.url = redactUrl(new URL(this.basePath || '/', this.origin));
    this.userAgent = options.userAgent ?? userAgent();
    this.opts = {
      url: options.url,
      timeoutMs: options.timeoutMs ?? CLIENT_DEFAULTS.timeoutMs,
      connectTimeoutMs: options.connectTimeoutMs ?? CLIENT_DEFAULTS.connectTimeoutMs,
      retries: options.retries ?? CLIENT_DEFAULTS.retries,
      retryDelayMs: options.retryDelayMs ?? CLIENT_DEFAULTS.retryDelayMs,
      retryMaxDelayMs: options.retryMaxDelayMs ?? CLIENT_DEFAULTS.retryMaxDelayMs,
      retryBudgetMs: options.retryBudgetMs ?? CLIENT_DEFAULTS.retryBudgetMs,
      insecure: options.insecure,
      ca: options.ca,
    };
    const proxy = proxyFor(this.origin, options.env ?? process.env);
    this.proxy = proxy && redactUrl(proxy);
    this.agents = proxy
      ? this.origin.protocol === 'https:'
        ? { https: new HttpsTunnelAgent(proxy, this.opts.connectTimeoutMs) }
        : { http: new HttpProxyAgent(proxy) }
      : {};
  }

  /** For messages: the URL, plus the channel when one is set. */
  get description(): string {
    return this.channel ? `${this.url} (channel ${this.channel})` : this.url;
  }

  /** GET /ping */
  async ping(): Promise<{ ping: string; version?: string; imgapi?: boolean }> {
    return this.getJson('ping', '/ping', {});
  }

  /** GET /images/:uuid[?channel=]. Any state is returned (§4.2). */
  async getImage(uuid: string, opts: { channel?: string } = {}): Promise<ImageManifest> {
    const channel = opts.channel ?? this.channel;
    const image = await this.getJson<ImageManifest>(`image ${uuid}`, `/images/${encodeURIComponent(uuid)}`, { channel });
    if (typeof image !== 'object' || image === null || Array.isArray(image)) {
      throw new ImgapiError(`IMGAPI ${this.url}: image ${uuid}: the answer is not a manifest object`);
    }
    return image;
  }

  /**
   * GET /images?... Without `limit`, pages through everything as sdc-clients
   * does (limit=1000, marker=<last uuid>, the repeated marker dropped).
   */
  async listImages(filters: ListImagesFilters = {}, opts: { channel?: string } = {}): Promise<ImageManifest[]> {
    const channel = (filters.channel as string | undefined) ?? opts.channel ?? this.channel;
    const base = { ...filters, channel };
    if (filters.limit !== undefined) return this.getJson('image list', '/images', base);
    const all: ImageManifest[] = [];
    let marker = filters.marker as string | undefined;
    let limit: number | undefined;
    for (;;) {
      const page = await this.getJson<ImageManifest[]>('image list', '/images', { ...base, marker, limit });
      if (!Array.isArray(page)) throw new ImgapiError(`IMGAPI ${this.url}: image list: the answer is not an array`);
      limit ??= 1000;
      const stop = page.length < limit;
      if (marker && page[0]?.uuid === marker) page.shift();
      if (!page.length) break;
      const next = page[page.length - 1]!.uuid;
      if (marker === next) break;
      marker = next;
      all.push(...page);
      if (stop) break;
    }
    return all;
  }

  /**
   * GET /images/:uuid/file, resolved once a 200/206 has its headers; the
   * request phase is retried like the JSON calls. The body is the caller's.
   */
  async getImageFileStream(uuid: string, opts: FileStreamOptions = {}): Promise<ImageFileResponse> {
    const what = `image ${uuid} file`;
    const path = `/images/${encodeURIComponent(uuid)}/file`;
    const query = { channel: opts.channel ?? this.channel };
    return this.withRetries(what, path, query.channel, opts.signal, async (signal) => {
      const headers: Record<string, string> = { ...this.headers(), accept: '*/*' };
      if (opts.offset) headers.range = `bytes=${opts.offset}-`;
      if (opts.offset && opts.ifRange) headers['if-range'] = opts.ifRange;
      const stream = got.stream(this.requestUrl(path, query), {
        headers,
        decompress: false,
        throwHttpErrors: false,
        retry: { limit: 0 },
        timeout: { connect: this.opts.connectTimeoutMs, response: this.opts.timeoutMs },
        agent: this.agents,
        https: this.httpsOptions(),
        signal,
      });
      let res: Response;
      try {
        res = await new Promise<Response>((resolve, reject) => {
          stream.once('response', resolve);
          stream.once('error', reject);
        });
      } catch (err) {
        stream.destroy();
        throw err;
      }
      stream.on('error', () => {}); // the caller attaches its own; never crash on an orphan
      if (res.statusCode !== 200 && res.statusCode !== 206) {
        const body = await readCapped(stream, 64 * 1024).catch(() => Buffer.alloc(0));
        throw this.httpError(what, res, body);
      }
      const h = res.headers;
      const cl = h['content-length'] === undefined ? undefined : Number(h['content-length']);
      const out: ImageFileResponse = {
        stream,
        statusCode: res.statusCode,
        contentLength: cl !== undefined && Number.isSafeInteger(cl) && cl >= 0 ? cl : undefined,
        acceptRanges: /\bbytes\b/i.test(String(h['accept-ranges'] ?? '')),
        etag: typeof h.etag === 'string' ? h.etag : undefined,
        contentMd5: typeof h['content-md5'] === 'string' ? h['content-md5'] : undefined,
      };
      const cr = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(h['content-range'] ?? ''));
      if (cr) out.range = { start: Number(cr[1]), end: Number(cr[2]), total: Number(cr[3]) };
      return out;
    });
  }

  // ---- internals

  protected headers(): Record<string, string> {
    return { 'accept-version': '~2', accept: 'application/json', 'user-agent': this.userAgent };
  }

  protected httpsOptions(): { rejectUnauthorized: boolean; certificateAuthority?: string | Buffer | Array<string | Buffer> } {
    return { rejectUnauthorized: !this.opts.insecure, ...(this.opts.ca ? { certificateAuthority: this.opts.ca } : {}) };
  }

  /** Query built as sdc-clients' _qs: undefined/null dropped, insertion order, node querystring. */
  protected requestUrl(path: string, query: Record<string, unknown>): URL {
    const q: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null) continue;
      q[k] = Array.isArray(v) ? v.map(String) : String(v);
    }
    const qs = querystring.stringify(q);
    const u = new URL(this.basePath + path + (qs ? `?${qs}` : ''), this.origin);
    return u;
  }

  private getJson<T>(what: string, path: string, query: Record<string, unknown>): Promise<T> {
    return this.fetchJson(what, path, query, async () => this.headers(), (res) => this.httpError(what, res, res.body));
  }

  /**
   * A GET with bounded retries; `headers` is called per attempt (a signed
   * request needs a fresh Date each time), `toError` turns a non-2xx answer
   * into the error to throw.
   */
  protected fetchJson<T>(
    what: string,
    path: string,
    query: Record<string, unknown>,
    headers: () => Promise<Record<string, string>>,
    toError: (res: Response<Buffer>) => Error,
  ): Promise<T> {
    return this.withRetries(what, path, query.channel, undefined, async (signal) => {
      const res = await got(this.requestUrl(path, query), {
        headers: await headers(),
        throwHttpErrors: false,
        retry: { limit: 0 },
        responseType: 'buffer',
        timeout: { connect: this.opts.connectTimeoutMs, request: this.opts.timeoutMs },
        agent: this.agents,
        https: this.httpsOptions(),
        signal,
      });
      if (res.statusCode < 200 || res.statusCode >= 300) throw toError(res);
      return this.parseJson<T>(what, res);
    });
  }


  protected parseJson<T>(what: string, res: Response<Buffer>): T {
    const type = String(res.headers['content-type'] ?? '');
    const text = res.body.toString('utf8');
    if (isHtml(type, text)) {
      throw new ImgapiError(`IMGAPI ${this.url}: ${what}: got an HTML page (HTTP ${res.statusCode}), not JSON — a proxy or login page? ${snippet(text)}`, {
        statusCode: res.statusCode,
        hint: 'check the --source URL and any http(s)_proxy settings',
      });
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      // Bad JSON with a proper frame is most likely a proxy cutting it: worth another try.
      throw new ImgapiError(`IMGAPI ${this.url}: ${what}: the answer is not valid JSON (${res.body.length} bytes${type ? `, ${type}` : ''}; cut short?)`, {
        statusCode: res.statusCode,
        retryable: /json/i.test(type),
      });
    }
  }

  /** One line for a non-2xx answer, from an IMGAPI `{code, message}` body when there is one. */
  protected httpError(what: string, res: Response<unknown>, body: Buffer): ImgapiError {
    const status = res.statusCode;
    const retryable = status >= 500 || status === 429 || status === 408;
    const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
    const text = body.toString('utf8');
    let parsed: { code?: unknown; message?: unknown } | undefined;
    try {
      const j = JSON.parse(text) as unknown;
      if (j && typeof j === 'object') parsed = j as typeof parsed;
    } catch {
      // not JSON
    }
    const common = { statusCode: status, retryable, retryAfterMs, body: parsed ?? text };
    if (parsed && typeof parsed.code === 'string') {
      const code = parsed.code;
      const message = oneLineText(String(parsed.message ?? ''));
      if (status === 404 && code === 'ResourceNotFound' && /^image /.test(what) && (/not found/.test(message) || message === '')) {
        // "image not found" (no uuid) is IMGAPI's answer for an image that exists in another channel.
        const elsewhere = message === 'image not found';
        const where = elsewhere ? (this.channel ? ` in channel ${this.channel}` : " in the server's default channel") : '';
        return new ImgapiError(`IMGAPI ${this.url}: ${what.replace(/ file$/, '')} not found${where} (${code})`, {
          ...common,
          restCode: code,
          hint: elsewhere ? 'the image is on this server in another channel; pick it with --channel or ?channel= in the URL' : undefined,
        });
      }
      return new ImgapiError(`IMGAPI ${this.url}: ${what}: ${message || `HTTP ${status}`} (${code}${status >= 500 ? `, HTTP ${status}` : ''})`, {
        ...common,
        restCode: code,
      });
    }
    const type = String(res.headers['content-type'] ?? '');
    const kind = !text ? 'an empty body' : isHtml(type, text) ? `an HTML page ${snippet(text)}` : `a non-IMGAPI body ${snippet(text)}`;
    return new ImgapiError(`IMGAPI ${this.url}: ${what}: HTTP ${status} ${res.statusMessage ?? ''} with ${kind}`.replace(/ +/g, ' '), {
      ...common,
      hint: status === 407 ? 'the proxy wants credentials: put them in the proxy URL' : undefined,
    });
  }

  /**
   * Runs `attempt` with bounded retries: count (retries), exponential backoff
   * and a total time budget. Only ImgapiErrors marked retryable and network
   * errors are retried.
   */
  protected async withRetries<T>(what: string, path: string, channel: unknown, outer: AbortSignal | undefined, attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const started = Date.now();
    const signal = outer ? AbortSignal.any([outer, interruptSignal()]) : interruptSignal();
    let delay = this.opts.retryDelayMs;
    for (let n = 1; ; n++) {
      log.debug(`IMGAPI GET ${this.url}${path}${channel ? ` (channel ${String(channel)})` : ''}${n > 1 ? ` attempt ${n}` : ''}`);
      try {
        return await attempt(signal);
      } catch (raw) {
        if (signal.aborted) throw abortReason(signal);
        const err = this.toImgapiError(what, raw);
        const wait = Math.min(Math.max(delay, err.retryAfterMs ?? 0), this.opts.retryMaxDelayMs);
        const elapsed = Date.now() - started;
        if (!err.retryable) throw err;
        if (n > this.opts.retries || elapsed + wait > this.opts.retryBudgetMs) {
          throw new ImgapiError(`${err.message} (gave up after ${n} attempt${n === 1 ? '' : 's'} in ${(elapsed / 1000).toFixed(1)}s)`, {
            statusCode: err.statusCode,
            restCode: err.restCode,
            body: err.body,
            retryable: true,
            hint: err.hint,
            cause: err,
          });
        }
        log.warn(`${err.message}; retrying in ${(wait / 1000).toFixed(1)}s (attempt ${n + 1} of ${this.opts.retries + 1})`);
        try {
          await sleep(wait, undefined, { signal });
        } catch {
          throw abortReason(signal);
        }
        delay = Math.min(delay * 2, this.opts.retryMaxDelayMs);
      }
    }
  }

  /** Turns got/network errors into one-line ImgapiErrors; says which are worth a retry. */
  toImgapiError(what: string, err: unknown): ImgapiError {
    if (err instanceof ImgapiError) return err;
    const c = describeNetworkError(err);
    const via = this.proxy && !c.fromProxy ? ` via proxy ${this.proxy}` : '';
    // got errors carry the request options (URL credentials included): keep only name, code, message.
    const e = err as { name?: string; code?: string; message?: string };
    const cause = Object.assign(new Error(oneLineText(String(e?.message ?? err))), { name: e?.name ?? 'Error', code: e?.code });
    return new ImgapiError(`IMGAPI ${this.url}: ${what}: ${c.text}${via}`, { retryable: c.retryable, hint: c.hint, cause });
  }
}

/** A short reason for a got/socket/proxy error, and whether another attempt may help. */
export function describeNetworkError(err: unknown): { text: string; retryable: boolean; hint?: string; fromProxy?: boolean } {
  const proxyErr = err instanceof ProxyError ? err : err instanceof RequestError && err.cause instanceof ProxyError ? err.cause : undefined;
  if (proxyErr) return { text: proxyErr.message, retryable: proxyErr.retryable, hint: proxyErr.hint, fromProxy: true };
  if (err instanceof TimeoutError) {
    const connecting = ['lookup', 'connect', 'secureConnect'].includes(err.event);
    return { text: `timed out ${connecting ? 'connecting' : 'waiting for an answer'}`, retryable: true };
  }
  const code = (err as { code?: string })?.code ?? '';
  const msg = oneLineText((err as Error)?.message ?? String(err));
  if (code === 'ENOTFOUND') return { text: 'host not found', retryable: false };
  if (code === 'ERR_STREAM_PREMATURE_CLOSE' || /premature close|aborted/i.test(msg)) {
    return { text: 'the connection closed before the whole answer arrived', retryable: true };
  }
  if (code === 'ECONNREFUSED') return { text: 'connection refused', retryable: true };
  if (code === 'ECONNRESET') return { text: 'connection reset', retryable: true };
  if (['EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ECONNABORTED', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN'].includes(code)) {
    return { text: msg, retryable: true };
  }
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/i.test(code)) {
    return { text: `TLS: ${msg}`, retryable: false, hint: 'a self-signed server needs --insecure (or IMGADM_INSECURE=1)' };
  }
  // Other got RequestErrors without a code are socket-level surprises: worth one more go.
  return { text: msg, retryable: err instanceof RequestError && !code };
}

// ---- helpers

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted');
}

function isHtml(type: string, text: string): boolean {
  return /html/i.test(type) || /^\s*<(!doctype|html|head|body)/i.test(text);
}

function oneLineText(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

/** The start of an unexpected body, for a message: tags and whitespace squeezed, clipped. */
function snippet(text: string): string {
  const title = /<title>([^<]*)<\/title>/i.exec(text)?.[1];
  const s = oneLineText((title ?? text).replace(/<[^>]*>/g, ' ')).slice(0, 80);
  return s ? JSON.stringify(s) : '';
}

function parseRetryAfter(v: string | string[] | undefined): number | undefined {
  if (typeof v !== 'string') return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

async function readCapped(stream: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    const b = c as Buffer;
    chunks.push(b);
    n += b.length;
    if (n >= max) break;
  }
  stream.destroy();
  return Buffer.concat(chunks).subarray(0, max);
}

// ---- proxies

/** A proxy refused or failed a request (a CONNECT answer, or no connection at all). */
export class ProxyError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/**
 * The proxy for `target` from the environment, or undefined: `<scheme>_proxy`
 * (lower case first, then upper case), then `all_proxy`; `no_proxy` excludes.
 */
export function proxyFor(target: URL, env: NodeJS.ProcessEnv = process.env): URL | undefined {
  const scheme = target.protocol.replace(/:$/, '');
  const raw = env[`${scheme}_proxy`] || env[`${scheme.toUpperCase()}_PROXY`] || env.all_proxy || env.ALL_PROXY;
  if (!raw) return undefined;
  if (noProxyMatches(target, env.no_proxy || env.NO_PROXY || '')) return undefined;
  let proxy: URL;
  try {
    // curl accepts "host:port" too.
    proxy = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    throw new BuildError(`invalid proxy URL in ${scheme}_proxy: ${JSON.stringify(redactUrl(raw))}`);
  }
  if (proxy.protocol !== 'http:' && proxy.protocol !== 'https:') {
    throw new BuildError(`unsupported proxy ${redactUrl(proxy)}: only http:// and https:// proxies are supported`);
  }
  return proxy;
}

/**
 * no_proxy as curl reads it: comma/space separated; `*` = everything; an
 * entry matches the host itself and its subdomains (leading `.` or `*.`
 * ignored); `host:port` entries only that port. IPs match exactly.
 */
export function noProxyMatches(target: URL, noProxy: string): boolean {
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = target.port || (target.protocol === 'https:' ? '443' : '80');
  for (let entry of noProxy.split(/[\s,]+/)) {
    entry = entry.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    let entryPort: string | undefined;
    const m = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(entry);
    if (m && (m[2] !== undefined) && !(isIP(entry) === 6)) {
      entry = m[1]!;
      entryPort = m[2];
    } else if (entry.startsWith('[')) {
      entry = entry.replace(/^\[|\]$/g, '');
    }
    if (entryPort && entryPort !== port) continue;
    entry = entry.replace(/^\*?\.+/, '');
    if (!entry) continue;
    if (host === entry) return true;
    if (!isIP(host) && host.endsWith(`.${entry}`)) return true;
  }
  return false;
}

function proxyAuthorization(proxy: URL): string | undefined {
  if (!proxy.username && !proxy.password) return undefined;
  const creds = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return `Basic ${Buffer.from(creds).toString('base64')}`;
}

type AddRequest = { addRequest(req: http.ClientRequest, options: Record<string, unknown>): void };

/** For http:// targets: connect to the proxy and send the request with an absolute URI. */
export class HttpProxyAgent extends http.Agent {
  constructor(private readonly proxy: URL) {
    super({ keepAlive: false });
  }

  addRequest(req: http.ClientRequest, options: Record<string, unknown>): void {
    const host = req.getHeader('host') ?? `${String(options.host)}:${String(options.port)}`;
    req.path = `http://${String(host)}${req.path}`;
    const auth = proxyAuthorization(this.proxy);
    if (auth) req.setHeader('proxy-authorization', auth);
    const port = Number(this.proxy.port) || (this.proxy.protocol === 'https:' ? 443 : 80);
    const hostname = this.proxy.hostname.replace(/^\[|\]$/g, '');
    (http.Agent.prototype as unknown as AddRequest).addRequest.call(this, req, { ...options, host: hostname, hostname, port, servername: undefined });
  }

  createConnection(options: Record<string, unknown>): Socket {
    const host = String(options.host);
    const port = Number(options.port);
    // An https:// proxy is reached over TLS; the request inside stays plain HTTP.
    if (this.proxy.protocol === 'https:') return tls.connect({ host, port, servername: isIP(host) ? undefined : host });
    return net.connect({ host, port });
  }
}

/** For https:// targets: a CONNECT tunnel through the proxy, then TLS to the target inside it. */
export class HttpsTunnelAgent extends https.Agent {
  constructor(
    private readonly proxy: URL,
    private readonly connectTimeoutMs: number,
  ) {
    super({ keepAlive: false });
  }

  // Node's Agent accepts an async createConnection: return nothing and call back later.
  createConnection(options: http.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): undefined {
    const cb = callback!;
    const host = String(options.host ?? options.hostname);
    const port = Number(options.port) || 443;
    const target = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
    const headers: Record<string, string> = { host: target };
    const auth = proxyAuthorization(this.proxy);
    if (auth) headers['proxy-authorization'] = auth;
    const proxyName = redactUrl(this.proxy);
    const mod = this.proxy.protocol === 'https:' ? https : http;
    let done = false;
    const finish = (err: Error | null, socket?: Socket): void => {
      if (done) return;
      done = true;
      cb(err, socket as Duplex);
    };
    const req = mod.request({
      host: this.proxy.hostname.replace(/^\[|\]$/g, ''),
      port: Number(this.proxy.port) || (this.proxy.protocol === 'https:' ? 443 : 80),
      method: 'CONNECT',
      path: target,
      headers,
      agent: false,
      timeout: this.connectTimeoutMs,
    });
    req.once('connect', (res, socket, head) => {
      req.setTimeout(0);
      if (res.statusCode !== 200) {
        socket.destroy();
        const s = res.statusCode ?? 0;
        finish(
          new ProxyError(
            `proxy ${proxyName} answered ${s} ${res.statusMessage ?? ''} to CONNECT ${target}`.trim(),
            s >= 500 || s === 429,
            s === 407 ? 'the proxy wants credentials: put them in the proxy URL' : undefined,
          ),
        );
        return;
      }
      if (head.length) socket.unshift(head);
      const servername = (options as tls.ConnectionOptions).servername || (isIP(host) ? undefined : host);
      const tlsSocket = tls.connect({ ...(options as tls.ConnectionOptions), socket, servername });
      finish(null, tlsSocket);
    });
    req.once('timeout', () => {
      req.destroy();
      finish(new ProxyError(`proxy ${proxyName}: CONNECT ${target} timed out`, true));
    });
    req.once('error', (err) => finish(new ProxyError(`proxy ${proxyName}: ${oneLineText(err.message)}`, true)));
    req.end();
    return undefined;
  }
}
