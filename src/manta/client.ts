/**
 * The few Manta directory-API calls publishing needs: HEAD, PutDirectory,
 * PutObject (streamed from a file with Content-Length and Content-MD5) and
 * GET of small objects. Every attempt is signed afresh (the `date` header
 * must be current); only what the Manta docs call safe is retried; no
 * header, key or signature ever goes into an error message. Redirects are
 * never followed (node's http does not) and answers are read up to
 * MAX_ANSWER_BYTES. Requests go straight or through the proxy the
 * environment names (http/proxy `routeFor`, as the IMGAPI clients do);
 * a CONNECT tunnel or an absolute-form request leaves the signed `date`
 * as it was, so the signature verifies at Manta.
 */
import { randomUUID } from 'node:crypto';
import http, { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { posix } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { readNoFollow } from '../core/files.js';
import { interruptSignal } from '../core/interrupt.js';
import { DEFAULT_RETRY, withRetry, type RetryPolicy } from '../core/retry.js';
import { serverErrorLine } from '../http/network-errors.js';
import { ProxyError, routeFor, type Route } from '../http/proxy.js';
import { mantaKeyId, signDateHeader, type Signer } from '../http/signature.js';

export interface MantaClientOptions {
  /** MANTA_URL; https:// is assumed when it has no scheme (as node-manta does). */
  url: string;
  user: string;
  subuser?: string;
  signer: Signer;
  /** MANTA_TLS_INSECURE: accept any server certificate. */
  insecure?: boolean;
  retry?: RetryPolicy;
  /** No bytes moving either way for this long → the attempt is abandoned (and retried). */
  stallMs?: number;
  /** How long to wait for `100 Continue` before sending the body anyway (as curl does). */
  continueTimeoutMs?: number;
  /** Where http_proxy/https_proxy/no_proxy are read. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Connecting to a proxy and its CONNECT answer. Default 10 s. */
  connectTimeoutMs?: number;
}

export type MantaEntry = { type: 'directory' } | { type: 'object'; md5?: string; size: number; contentType?: string };

/**
 * A failed Manta call: HTTP status + wire code, or a network code (status
 * undefined). One line, `Manta PUT /u/stor/x: 403 AuthorizationFailed:
 * <message>`; what to check is in `hint`, not in the line.
 */
export class MantaError extends Error {
  readonly hint?: string;
  /** For a network failure: whether another attempt may help (default: by its code). */
  readonly retryable?: boolean;

  constructor(
    readonly method: string,
    readonly path: string,
    readonly code: string,
    readonly status?: number,
    detail?: string,
    readonly retryAfterMs?: number,
    o: { hint?: string; retryable?: boolean } = {},
  ) {
    const where = `Manta ${method} ${path}`;
    // A code made from the status ("InternalServerError") reads as the status text; a server's own code as sent.
    const own = status !== undefined && code !== STATUS_CODES[status]?.replace(/\s+/g, '') ? code : undefined;
    // A network failure: the error's own words (they name the code, or the proxy that failed) or the code.
    const net = !detail ? code : detail.includes(code) || code === 'ProxyError' ? detail : `${code}: ${detail}`;
    super(status !== undefined ? serverErrorLine(where, { status, code: own, message: detail }) : `${where}: ${net}`);
    this.name = 'MantaError';
    this.hint = o.hint;
    this.retryable = o.retryable;
  }

  get isAuth(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

const RETRY_NET = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'Stalled']);

/**
 * What Manta says is safe to repeat for the calls here (plain PUTs without
 * conditional headers are create-or-overwrite; PutDirectory and HEAD are
 * idempotent): 5xx but 501/507, throttling, UploadTimeout, ConcurrentRequest, a body
 * corrupted in transit, and network failures. Never auth or request errors.
 * A Retry-After travels in the error (`retryAfterMs`).
 */
export function mantaRetryable(err: unknown): boolean {
  if (!(err instanceof MantaError)) return false;
  if (err.code === 'ResponseTooLarge') return false;
  if (err.status === undefined) return err.retryable ?? RETRY_NET.has(err.code);
  // 507 NotEnoughSpace and 501 NotImplemented will not change by asking again.
  if ((err.status >= 500 && err.status !== 501 && err.status !== 507) || err.status === 408 || err.status === 429) return true;
  if (err.status === 409 && err.code === 'ConcurrentRequest') return true;
  return err.status === 400 && err.code === 'ContentMD5Mismatch';
}

/** `/u/stor/a b/c` → `/u/stor/a%20b/c`: each segment percent-encoded, as node-manta does. */
export function encodeMantaPath(p: string): string {
  const norm = posix.normalize(p).replace(/\/+$/, '');
  if (!norm.startsWith('/')) throw new Error(`Manta path must be absolute: ${p}`);
  return norm.split('/').map(encodeURIComponent).join('/');
}

export function mantaBaseUrl(url: string): URL {
  return new URL(/^https?:\/\//i.test(url) ? url : `https://${url}`);
}

interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface SendOptions {
  headers?: Record<string, string>;
  /** Makes the body for one attempt (a new stream per retry). */
  body?: () => Readable;
  size?: number;
  onProgress?: (bytes: number) => void;
}

/** Largest answer body read (errors, small objects): Manta's JSON answers are a few hundred bytes. */
export const MAX_ANSWER_BYTES = 1024 * 1024;

export class MantaClient {
  readonly url: URL;
  readonly keyId: string;
  /** The proxy between us and Manta (no credentials), if the environment names one. */
  readonly proxy?: string;
  private readonly route: Route;
  private readonly retry: RetryPolicy;
  private readonly stallMs: number;
  private readonly continueMs: number;

  constructor(readonly opts: MantaClientOptions) {
    this.url = mantaBaseUrl(opts.url);
    this.keyId = mantaKeyId(opts.user, opts.subuser, opts.signer.fingerprint);
    const route = routeFor(this.url, {
      env: opts.env,
      keepAlive: true,
      maxSockets: 8,
      rejectUnauthorized: !opts.insecure,
      connectTimeoutMs: opts.connectTimeoutMs,
    });
    this.route = route;
    this.proxy = route.proxy;
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.stallMs = opts.stallMs ?? 60_000;
    this.continueMs = opts.continueTimeoutMs ?? 1000;
  }

  close(): void {
    this.route.agent.destroy();
  }

  /** The object or directory at `path`, or undefined when (and only when) Manta says 404. */
  async head(path: string): Promise<MantaEntry | undefined> {
    return this.retried(async () => {
      const res = await this.send('HEAD', path, { headers: { accept: 'application/json, */*' } });
      if (res.status === 404) return undefined;
      this.check('HEAD', path, res, [200]);
      const type = String(res.headers['content-type'] ?? '');
      if (/^application\/x-json-stream;\s*type=directory/.test(type)) return { type: 'directory' };
      const md5 = res.headers['content-md5'];
      return {
        type: 'object',
        ...(typeof md5 === 'string' && md5 ? { md5 } : {}),
        size: Number(res.headers['content-length'] ?? 0),
        ...(type ? { contentType: type } : {}),
      };
    });
  }

  /** PutDirectory (one level; Manta answers 204 whether or not it existed). */
  async mkdir(path: string): Promise<void> {
    await this.retried(async () => {
      const res = await this.send('PUT', path, {
        headers: { 'content-type': 'application/json; type=directory', accept: 'application/json' },
      });
      this.check('PUT', path, res, [200, 201, 204]);
    });
  }

  /**
   * PutObject streamed from a file. Before a retry, a HEAD: if the earlier
   * attempt did land (only its response was lost), it is not sent again.
   */
  async putFile(
    path: string,
    file: string,
    meta: { size: number; md5: string; contentType: string; onProgress?: (bytes: number) => void },
  ): Promise<void> {
    // O_NOFOLLOW: a file swapped for a link after it was planned is not read (Content-MD5 guards the rest).
    await this.putBody(path, () => readNoFollow(file), meta);
  }

  async putBuffer(path: string, body: Buffer, meta: { md5: string; contentType: string }): Promise<void> {
    await this.putBody(path, () => Readable.from([body]), { ...meta, size: body.length });
  }

  /** GET of a small object, checked against its Content-MD5. */
  async get(path: string): Promise<Buffer> {
    return this.retried(async () => {
      const res = await this.send('GET', path, { headers: { accept: '*/*' } });
      this.check('GET', path, res, [200]);
      return res.body;
    });
  }

  private async putBody(
    path: string,
    body: () => Readable,
    meta: { size: number; md5: string; contentType: string; onProgress?: (bytes: number) => void },
  ): Promise<void> {
    await this.retried(async (attempt) => {
      if (attempt > 1) {
        const now = await this.head(path).catch(() => undefined);
        if (now?.type === 'object' && now.md5 === meta.md5) return;
      }
      const headers: Record<string, string> = {
        'content-type': meta.contentType,
        'content-length': String(meta.size),
        'content-md5': meta.md5,
        accept: 'application/json',
      };
      // Manta answers auth and path errors before 100 Continue, so a refused
      // upload costs no body bytes. It never sends 100 for an empty body.
      if (meta.size > 0) headers.expect = '100-continue';
      const res = await this.send('PUT', path, { headers, body, size: meta.size, onProgress: meta.onProgress });
      this.check('PUT', path, res, [200, 201, 204]);
      const computed = res.headers['computed-md5'];
      if (typeof computed === 'string' && computed !== meta.md5) {
        throw new MantaError('PUT', path, 'ComputedMD5Mismatch', res.status, `server computed ${computed}, expected ${meta.md5}`);
      }
    });
  }

  private retried<T>(fn: (attempt: number) => Promise<T>): Promise<T> {
    return withRetry(fn, { ...this.retry, retryable: mantaRetryable, signal: interruptSignal() });
  }

  private check(method: string, path: string, res: Response, ok: number[]): void {
    if (ok.includes(res.status)) return;
    let code = http.STATUS_CODES[res.status]?.replace(/\s+/g, '') ?? 'Error';
    let message: string | undefined;
    // Node's http never follows a redirect: say where it pointed (host only), and stop.
    if (res.status >= 300 && res.status < 400 && res.status !== 304) {
      throw new MantaError(method, path, code, res.status, `redirect to ${locationHost(res.headers.location, this.url)} not followed`);
    }
    if (res.body.length && String(res.headers['content-type'] ?? '').includes('json')) {
      try {
        const j = JSON.parse(res.body.toString('utf8')) as { code?: unknown; message?: unknown };
        if (typeof j.code === 'string') code = j.code;
        if (typeof j.message === 'string') message = j.message;
      } catch {
        /* not JSON after all: keep the status text */
      }
    }
    const ra = Number(res.headers['retry-after']);
    throw new MantaError(method, path, code, res.status, message, Number.isFinite(ra) && ra >= 0 ? ra * 1000 : undefined, { hint: this.hintFor(res.status, code) });
  }

  /** What to check after a refusal: the account and key (401/403), or the clock (a stale `date`). */
  private hintFor(status: number, code: string): string | undefined {
    if (code === 'InvalidHeader' || code === 'RequestExpired') return "check this host's clock (Manta allows 5 minutes of skew)";
    if (status !== 401 && status !== 403) return undefined;
    const o = this.opts;
    const who = `${o.user}${o.subuser ? `/${o.subuser}` : ''}`;
    return `check MANTA_USER and MANTA_SUBUSER: key ${o.signer.fingerprint} from ${o.signer.source} must be one of ${who}'s keys at ${this.url.origin}`;
  }

  private async send(method: string, path: string, o: SendOptions): Promise<Response> {
    const target = new URL(this.url.href);
    target.pathname = posix.join(this.url.pathname, encodeMantaPath(path));
    const auth = await signDateHeader(this.opts.signer, this.keyId);
    const headers: Record<string, string> = {
      'accept-version': '~1.0',
      'x-request-id': randomUUID(),
      'user-agent': 'buildimage',
      ...o.headers,
      ...auth,
    };
    if (!o.body && method === 'PUT') headers['content-length'] ??= '0';
    const mod = target.protocol === 'https:' ? https : http;
    const signal = interruptSignal();
    signal.throwIfAborted();

    return new Promise<Response>((resolve, reject) => {
      let settled = false;
      let bodyStarted = false;
      let bodyDone = !o.body;
      let responded = false;
      let source: Readable | undefined;
      let continueTimer: NodeJS.Timeout | undefined;

      const req = mod.request({
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        path: this.route.path(target),
        method,
        headers,
        agent: this.route.agent,
      });
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(continueTimer);
        signal.removeEventListener('abort', onAbort);
        source?.destroy();
        req.destroy();
        reject(err);
      };
      const onAbort = (): void => fail(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });

      req.setTimeout(this.stallMs, () =>
        fail(new MantaError(method, path, 'Stalled', undefined, `no progress for ${Math.round(this.stallMs / 1000)} s`)),
      );
      req.on('error', (err: NodeJS.ErrnoException) => fail(this.netError(method, path, err)));
      req.on('finish', () => {
        bodyDone = true;
      });
      req.on('response', (res) => {
        responded = true;
        clearTimeout(continueTimer);
        const chunks: Buffer[] = [];
        let got = 0;
        res.on('data', (c: Buffer) => {
          got += c.length;
          if (got > MAX_ANSWER_BYTES) {
            fail(new MantaError(method, path, 'ResponseTooLarge', res.statusCode, `the answer is larger than ${MAX_ANSWER_BYTES / (1024 * 1024)} MiB; not reading more`));
            return;
          }
          chunks.push(c);
        });
        res.on('error', (err: NodeJS.ErrnoException) => fail(this.netError(method, path, err)));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          // An early answer (e.g. 401 before 100 Continue) leaves the body unsent: drop the socket.
          if (!bodyDone) {
            source?.destroy();
            req.destroy();
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
      });

      const startBody = (): void => {
        if (bodyStarted || responded || settled || !o.body) return;
        bodyStarted = true;
        clearTimeout(continueTimer);
        source = o.body();
        let sent = 0;
        const counter = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            sent += chunk.length;
            o.onProgress?.(sent);
            cb(null, chunk);
          },
        });
        pipeline(source, counter, req).catch(
          (err: NodeJS.ErrnoException) => {
            if (!responded) fail(this.netError(method, path, err));
          },
        );
      };

      if (!o.body) {
        req.end();
      } else if (headers.expect) {
        req.flushHeaders();
        req.on('continue', startBody);
        continueTimer = setTimeout(startBody, this.continueMs);
      } else {
        startBody();
      }
    });
  }

  private netError(method: string, path: string, err: NodeJS.ErrnoException): unknown {
    if (err instanceof MantaError) return err;
    if (err.name === 'AbortError') return interruptSignal().reason ?? err;
    // The tunnel's own failure already names the proxy.
    if (err instanceof ProxyError) return new MantaError(method, path, 'ProxyError', undefined, err.message, undefined, { hint: err.hint, retryable: err.retryable });
    const code = err.code ?? 'ECONNRESET';
    const hint = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code) ? 'set MANTA_TLS_INSECURE=1 only for a test server' : undefined;
    const via = this.proxy ? ` via proxy ${this.proxy}` : '';
    return new MantaError(method, path, code, undefined, `${err.message}${via}`, undefined, { hint });
  }
}

/** `https://host:port` of a Location header, for a message (no path, query or credentials). */
function locationHost(loc: string | undefined, base: URL): string {
  if (!loc) return 'nowhere (no Location)';
  try {
    const u = new URL(loc, base);
    return `${u.protocol}//${u.host}`;
  } catch {
    return 'an invalid Location';
  }
}
