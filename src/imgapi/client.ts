/**
 * A small read-side IMGAPI client (imgapi.md §4) over got: GetImage,
 * ListImages, GetImageFile, Ping. It speaks as sdc-clients/imgadm do
 * (§2.1–2.2, §5.1): the channel comes from `?channel=` in the URL or the
 * `channel` option, `Accept-Version: ~2` so that `channels` is served.
 * GETs are retried with backoff on connection errors, timeouts, 5xx and
 * 429; 4xx answers fail at once. Error bodies become one-line BuildErrors.
 * Requests go straight or through the proxy http_proxy/https_proxy/no_proxy
 * name, as http/proxy `routeFor` chooses for every client.
 * Answers are untrusted: JSON is read up to MAX_JSON_BYTES decompressed,
 * a manifest must carry the uuid asked for, only valid uuids go into a
 * path, signed calls follow no redirect and no call follows one from https
 * to http.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import querystring from 'node:querystring';
import type { Readable } from 'node:stream';
import got, { type Agents, type PlainResponse, type Response } from 'got';
import { BuildError, asText, oneLine } from '../core/errors.js';
import { abortReason, interruptSignal } from '../core/interrupt.js';
import { log } from '../core/log.js';
import { userAgent } from '../core/package.js';
import { withRetry, type RetryPolicy } from '../core/retry.js';
import { describeNetworkError, serverErrorLine } from '../http/network-errors.js';
import { routeFor } from '../http/proxy.js';
import { redactUrl } from '../core/redact.js';
import { isUuid, type ImageManifest } from '../image/manifest/types.js';

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
  /** Retries of GETs; each field defaults to CLIENT_DEFAULTS.retry's. */
  retry?: Partial<RetryPolicy>;
  /** Skip TLS verification (IMGADM_INSECURE / --insecure). */
  insecure?: boolean;
  /** Extra CA certificate(s) to trust. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Where http_proxy/https_proxy/no_proxy are read. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Largest JSON answer read (decompressed bytes). Default MAX_JSON_BYTES. */
  maxJsonBytes?: number;
}

/** A JSON answer larger than this (after decompression) is refused: a page of 1000 manifests is ~2 MiB. */
export const MAX_JSON_BYTES = 8 * 1024 * 1024;

/** What a JSON call got back: status, headers and the (capped) body. */
export interface Answer {
  statusCode: number;
  statusMessage?: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** The head of an answer, for error lines. */
type Head = Pick<Answer, 'statusCode' | 'statusMessage' | 'headers'>;

interface SendOptions {
  method?: 'GET' | 'POST' | 'PUT';
  headers: Record<string, string>;
  body?: Buffer | NodeJS.ReadableStream;
  timeout: { connect: number; request?: number; response?: number };
  signal: AbortSignal;
  /** Signed calls follow no redirect at all (as restify-clients). */
  signed: boolean;
}

export const CLIENT_DEFAULTS = {
  timeoutMs: 30_000,
  connectTimeoutMs: 10_000,
  retry: { attempts: 5, firstDelayMs: 500, maxDelayMs: 8_000, budgetMs: 60_000 } satisfies RetryPolicy,
};

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

export class ImgapiClient {
  /** Scheme, host and port (with credentials, if the URL had any). */
  protected readonly origin: URL;
  readonly basePath: string;
  readonly channel?: string;
  /** The URL for messages: no credentials, no query. */
  readonly url: string;
  protected readonly opts: Required<Omit<ImgapiClientOptions, 'channel' | 'userAgent' | 'ca' | 'env' | 'insecure' | 'retry' | 'maxJsonBytes'>> &
    Pick<ImgapiClientOptions, 'ca' | 'insecure'> & { retry: RetryPolicy };
  protected readonly userAgent: string;
  protected readonly agents: Agents;
  protected readonly maxJsonBytes: number;
  readonly proxy?: string;

  constructor(options: ImgapiClientOptions) {
    const parsed = parseImgapiUrl(options.url);
    this.origin = parsed.origin;
    this.basePath = parsed.basePath;
    this.channel = options.channel || parsed.channel;
    this.url = redactUrl(new URL(this.basePath || '/', this.origin));
    this.userAgent = options.userAgent ?? userAgent();
    this.maxJsonBytes = options.maxJsonBytes ?? MAX_JSON_BYTES;
    this.opts = {
      url: options.url,
      timeoutMs: options.timeoutMs ?? CLIENT_DEFAULTS.timeoutMs,
      connectTimeoutMs: options.connectTimeoutMs ?? CLIENT_DEFAULTS.connectTimeoutMs,
      retry: { ...CLIENT_DEFAULTS.retry, ...options.retry },
      insecure: options.insecure,
      ca: options.ca,
    };
    const route = routeFor(this.origin, { env: options.env, connectTimeoutMs: this.opts.connectTimeoutMs });
    this.proxy = route.proxy;
    this.agents = this.origin.protocol === 'https:' ? { https: route.agent as HttpsAgent } : { http: route.agent };
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
    const image = await this.getJson<ImageManifest>(`image ${this.checkUuid(uuid)}`, `/images/${encodeURIComponent(uuid)}`, { channel });
    return this.checkImage(`image ${uuid}`, image, uuid);
  }

  /** A uuid that goes into a URL path: a lower-case uuid, nothing else. */
  protected checkUuid(uuid: unknown): string {
    if (!isUuid(uuid)) throw new ImgapiError(`IMGAPI ${this.url}: ${JSON.stringify(uuid)} is not an image uuid`);
    return uuid;
  }

  /** An answer that should be image `uuid`'s manifest: an object carrying exactly that uuid. */
  protected checkImage(what: string, image: unknown, uuid: string): ImageManifest {
    if (typeof image !== 'object' || image === null || Array.isArray(image)) {
      throw new ImgapiError(`IMGAPI ${this.url}: ${what}: the answer is not a manifest object`);
    }
    const got = (image as { uuid?: unknown }).uuid;
    if (got !== uuid) {
      throw new ImgapiError(`IMGAPI ${this.url}: ${what}: the server answered with image ${oneLine(asText(got)).slice(0, 80)}, not ${uuid}`, {
        hint: 'the server (or something between us) is not serving the image asked for',
      });
    }
    return image as ImageManifest;
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
      const bad = page.find((m) => typeof m !== 'object' || m === null || !isUuid((m as { uuid?: unknown }).uuid));
      if (bad !== undefined) throw new ImgapiError(`IMGAPI ${this.url}: image list: an entry has no valid uuid (${oneLine(asText(bad)).slice(0, 80)})`);
      limit ??= 1000;
      const stop = page.length < limit;
      if (marker && page[0]?.uuid === marker) page.shift();
      if (!page.length) break;
      const next = page[page.length - 1].uuid;
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
    const what = `image ${this.checkUuid(uuid)} file`;
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
        followRedirect: this.redirectRule(false),
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
      const redirect = this.redirectError(what, res, false);
      if (redirect) {
        stream.destroy();
        throw redirect;
      }
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
      q[k] = Array.isArray(v) ? v.map(asText) : asText(v);
    }
    const qs = querystring.stringify(q);
    const u = new URL(this.basePath + path + (qs ? `?${qs}` : ''), this.origin);
    return u;
  }

  private getJson<T>(what: string, path: string, query: Record<string, unknown>): Promise<T> {
    return this.fetchJson(what, path, query, () => Promise.resolve(this.headers()), (res) => this.httpError(what, res, res.body), false);
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
    toError: (res: Answer) => Error,
    signed: boolean,
  ): Promise<T> {
    return this.withRetries(what, path, query.channel, undefined, async (signal) => {
      const res = await this.send(what, this.requestUrl(path, query), {
        headers: await headers(),
        timeout: { connect: this.opts.connectTimeoutMs, request: this.opts.timeoutMs },
        signal,
        signed,
      });
      if (res.statusCode < 200 || res.statusCode >= 300) throw toError(res);
      return this.parseJson<T>(what, res);
    });
  }

  /**
   * One exchange, its body read up to maxJsonBytes *decompressed* (a gzip
   * bomb stops there too). Redirects: none on a signed call, and never from
   * https to http; a 3xx not followed is an error naming its Location host.
   */
  protected async send(what: string, url: URL, o: SendOptions): Promise<Answer> {
    const stream = got.stream(url, {
      method: o.method ?? 'GET',
      headers: o.headers,
      // A got stream waits for its writer unless it has a body: a bodiless POST gets an empty one.
      ...(o.body !== undefined ? { body: o.body as Buffer } : (o.method ?? 'GET') !== 'GET' ? { body: Buffer.alloc(0) } : {}),
      throwHttpErrors: false,
      retry: { limit: 0 },
      timeout: o.timeout,
      agent: this.agents,
      https: this.httpsOptions(),
      followRedirect: this.redirectRule(o.signed),
      signal: o.signal,
    });
    try {
      const res = await new Promise<Response>((resolve, reject) => {
        stream.once('response', resolve);
        stream.once('error', reject);
      });
      const redirect = this.redirectError(what, res, o.signed);
      if (redirect) throw redirect;
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const c of stream) {
        const b = c as Buffer;
        n += b.length;
        if (n > this.maxJsonBytes) {
          throw new ImgapiError(`IMGAPI ${this.url}: ${what}: the answer is larger than ${mib(this.maxJsonBytes)} (HTTP ${res.statusCode}); not reading more`, {
            statusCode: res.statusCode,
            hint: 'an IMGAPI answer is a few KiB to a few MiB: check the URL and any proxy in between',
          });
        }
        chunks.push(b);
      }
      return { statusCode: res.statusCode, statusMessage: res.statusMessage, headers: res.headers, body: Buffer.concat(chunks) };
    } finally {
      stream.destroy();
    }
  }

  /** got's followRedirect: never on a signed call; otherwise only not from https to http. */
  protected redirectRule(signed: boolean): (res: PlainResponse) => boolean {
    return (res) => !signed && !this.redirectTarget(res)?.downgrade;
  }

  private redirectTarget(res: PlainResponse | Head & { url?: string }): { to: URL; downgrade: boolean } | undefined {
    const loc = res.headers.location;
    if (res.statusCode < 300 || res.statusCode >= 400 || typeof loc !== 'string' || !loc) return undefined;
    const from = new URL(res.url ?? this.origin.href);
    let to: URL;
    try {
      to = new URL(loc, from);
    } catch {
      return undefined;
    }
    return { to, downgrade: from.protocol === 'https:' && to.protocol !== 'https:' };
  }

  /** The error for a 3xx we did not follow (undefined for any other answer). */
  protected redirectError(what: string, res: Response | PlainResponse, signed: boolean): ImgapiError | undefined {
    if (res.statusCode < 300 || res.statusCode >= 400 || res.statusCode === 304) return undefined;
    const t = this.redirectTarget(res);
    const where = t ? ` to ${t.to.protocol}//${t.to.host}` : ' without a usable Location';
    const why = signed ? 'a signed call never follows a redirect' : t?.downgrade ? 'from https to http' : 'not a redirect to follow';
    return new ImgapiError(`IMGAPI ${this.url}: ${what}: HTTP ${res.statusCode} redirect${where} not followed (${why})`, {
      statusCode: res.statusCode,
      hint: 'point the URL at the server itself (https), not at a redirect',
    });
  }

  protected parseJson<T>(what: string, res: Answer): T {
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
  protected httpError(what: string, res: Head, body: Buffer): ImgapiError {
    const status = res.statusCode;
    const retryable = status >= 500 || status === 429 || status === 408;
    const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
    const text = body.toString('utf8');
    let parsed: { code?: unknown; message?: unknown } | undefined;
    try {
      const j = JSON.parse(text) as unknown;
      if (j && typeof j === 'object') parsed = j;
    } catch {
      // not JSON
    }
    const common = { statusCode: status, retryable, retryAfterMs, body: parsed ?? text };
    if (parsed && typeof parsed.code === 'string') {
      const code = parsed.code;
      const message = oneLine(parsed.message === undefined ? '' : asText(parsed.message));
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
      return new ImgapiError(serverErrorLine(`IMGAPI ${this.url}: ${what}`, { status, code, message }), { ...common, restCode: code });
    }
    const type = String(res.headers['content-type'] ?? '');
    const kind = !text ? undefined : isHtml(type, text) ? `an HTML page ${snippet(text)}` : `a non-IMGAPI body ${snippet(text)}`;
    return new ImgapiError(serverErrorLine(`IMGAPI ${this.url}: ${what}`, { status, message: kind?.trim() }), {
      ...common,
      hint: status === 407 ? 'the proxy wants credentials: put them in the proxy URL' : undefined,
    });
  }

  /**
   * Runs `attempt` with the retry policy (count, backoff, time budget,
   * Retry-After). Only ImgapiErrors marked retryable (network trouble
   * included) are retried; running out of tries says so in the message.
   */
  protected async withRetries<T>(what: string, path: string, channel: unknown, outer: AbortSignal | undefined, attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const started = Date.now();
    const signal = outer ? AbortSignal.any([outer, interruptSignal()]) : interruptSignal();
    let n = 0;
    try {
      return await withRetry(
        async (a) => {
          n = a;
          log.debug(`IMGAPI GET ${this.url}${path}${channel ? ` (channel ${asText(channel)})` : ''}${a > 1 ? ` attempt ${a}` : ''}`);
          try {
            return await attempt(signal);
          } catch (raw) {
            if (signal.aborted) throw abortReason(signal);
            throw this.toImgapiError(what, raw);
          }
        },
        { ...this.opts.retry, retryable: (e) => e instanceof ImgapiError && e.retryable, signal },
      );
    } catch (err) {
      if (signal.aborted || !(err instanceof ImgapiError && err.retryable)) throw err;
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      throw new ImgapiError(`${err.message}; gave up after ${n} attempt${n === 1 ? '' : 's'} in ${secs}s`, {
        statusCode: err.statusCode,
        restCode: err.restCode,
        body: err.body,
        retryable: true,
        hint: err.hint,
        cause: err,
      });
    }
  }

  /** Turns got/network errors into one-line ImgapiErrors; says which are worth a retry. */
  toImgapiError(what: string, err: unknown): ImgapiError {
    if (err instanceof ImgapiError) return err;
    const c = describeNetworkError(err);
    const via = this.proxy && !c.fromProxy ? ` via proxy ${this.proxy}` : '';
    // got errors carry the request options (URL credentials included): keep only name, code, message.
    const e = err as { name?: string; code?: string; message?: string };
    const cause = Object.assign(new Error(oneLine(String(e?.message ?? err))), { name: e?.name ?? 'Error', code: e?.code });
    return new ImgapiError(`IMGAPI ${this.url}: ${what}: ${c.text}${via}`, { retryable: c.retryable, hint: c.hint, cause });
  }
}

// ---- helpers

function mib(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
}

function isHtml(type: string, text: string): boolean {
  return /html/i.test(type) || /^\s*<(!doctype|html|head|body)/i.test(text);
}

/** The start of an unexpected body, for a message: tags and whitespace squeezed, clipped. */
function snippet(text: string): string {
  const title = /<title>([^<]*)<\/title>/i.exec(text)?.[1];
  const s = oneLine((title ?? text).replace(/<[^>]*>/g, ' ')).slice(0, 80);
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
