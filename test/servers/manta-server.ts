/**
 * A local Manta (muskie) stand-in on 127.0.0.1 for the calls publishing
 * uses: PutDirectory, PutObject (Content-Length or chunked, Content-MD5
 * check, 100-continue, streamed to disk, committed only when complete),
 * HeadObject/GetObject (server-computed Content-MD5), ListDirectory,
 * DeleteObject, and PutSnapLink refused as Manta v2 does. Requests are
 * authenticated with the official http-signature parser/verifier (signed
 * `date`, MD5 keyId, subusers) or as presigned URLs rebuilt as muskie
 * does; errors have muskie's JSON bodies (none on HEAD). Faults can be
 * injected per request, and every request is recorded for assertions.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { hugeJson } from './imgapi-server.js';
import { httpSignature, sshpk } from './ssh-keys.js';

export interface Account {
  /** OpenSSH public key lines. */
  keys: string[];
  subusers?: Record<string, string[]>;
}

export type FaultKind =
  | { kind: 'status'; status: number; code: string; message?: string; retryAfter?: number }
  /** Drop the connection before reading anything. */
  | { kind: 'reset' }
  /** Read this many body bytes, then drop the connection (nothing is stored). */
  | { kind: 'reset-mid-upload'; afterBytes: number }
  /** Read this many body bytes, then stop reading and never answer. */
  | { kind: 'stall'; afterBytes: number }
  /** Store the object, then drop the connection instead of answering (a lost 204). */
  | { kind: 'commit-then-reset' }
  /** Wait before handling. */
  | { kind: 'delay'; ms: number }
  /** Answer with `status` (e.g. 301/302/307) and `Location: location`, nothing stored. */
  | { kind: 'redirect'; status: number; location: string }
  /** Answer `status` with a JSON error body of `bytes` bytes, streamed as the client reads it. */
  | { kind: 'huge'; status: number; bytes: number };

export type Fault = FaultKind & {
  method?: string;
  /** Decoded Manta path, or a pattern. */
  path?: string | RegExp;
  /** How many matching requests to fault (default 1). */
  times?: number;
  /** Let this many matching requests through first. */
  skip?: number;
};

export interface RecordedRequest {
  method: string;
  path: string;
  status?: number;
  /** Body bytes received. */
  bytes: number;
  /** A PUT that stored an object or directory. */
  committed: boolean;
  keyId?: string;
  presigned: boolean;
  fault?: string;
  headers: http.IncomingHttpHeaders;
}

interface DirEntry {
  type: 'directory';
  mtime: Date;
}
interface ObjEntry {
  type: 'object';
  file: string;
  md5: string;
  size: number;
  contentType: string;
  etag: string;
  mtime: Date;
  /** Answered without Content-MD5 (as Manta does for objects committed by a multipart upload). */
  noMd5?: boolean;
}
type Entry = DirEntry | ObjEntry;

const EMPTY_MD5 = '1B2M2Y8AsgTpgAmY7PhCfg==';
// muskie's allow-list (compared uppercase).
const SIGN_ALG = new Set(['RSA-SHA1', 'RSA-SHA256', 'RSA-SHA384', 'RSA-SHA512', 'DSA-SHA1', 'DSA-SHA256', 'ECDSA-SHA256', 'ECDSA-SHA384', 'ECDSA-SHA512', 'ED25519-SHA512']);

class HttpFail extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, string> = {},
  ) {
    super(message);
  }
}

function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

export class MantaTestServer {
  readonly requests: RecordedRequest[] = [];
  /** Every Authorization header received (to check none leaks into logs). */
  readonly authorizations: string[] = [];
  private readonly faults: Fault[] = [];
  private readonly entries = new Map<string, Entry>();
  private readonly keys = new Map<string, unknown>();
  private readonly sockets = new Set<Socket>();
  private server!: http.Server;
  url = '';
  /** Called when a request has been authenticated, before it is handled (e.g. to kill a client mid-run). */
  onRequest?: (r: RecordedRequest) => void;
  /** UploadTimeout: no body bytes for this long → 408 (muskie: 45 s). */
  dataTimeoutMs = 45_000;
  clockSkewS = 300;

  private constructor(
    readonly dir: string,
    accounts: Record<string, Account>,
  ) {
    for (const [login, acct] of Object.entries(accounts)) {
      for (const root of [`/${login}`, `/${login}/stor`, `/${login}/public`]) this.entries.set(root, { type: 'directory', mtime: new Date() });
      for (const line of acct.keys) this.addKey(login, undefined, line);
      for (const [sub, lines] of Object.entries(acct.subusers ?? {})) for (const line of lines) this.addKey(login, sub, line);
    }
  }

  /** With `tls` (PEM key and certificate) it serves https, as real Manta requires. */
  static async start(accounts: Record<string, Account>, opts: { tls?: { key: string; cert: string } } = {}): Promise<MantaTestServer> {
    const s = new MantaTestServer(await mkdtemp(join(tmpdir(), 'manta-server-')), accounts);
    const handler = (req: IncomingMessage, res: ServerResponse): void => void s.handle(req, res, false);
    s.server = opts.tls ? https.createServer(opts.tls, handler) : http.createServer(handler);
    s.server.on('checkContinue', (req, res) => void s.handle(req, res, true));
    s.server.on('connection', (sock) => {
      s.sockets.add(sock);
      sock.on('close', () => s.sockets.delete(sock));
    });
    await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', r));
    s.url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
    return s;
  }

  addKey(login: string, subuser: string | undefined, pubLine: string): void {
    const key = sshpk.parseKey(pubLine, 'ssh');
    const fp = key.fingerprint('md5').toString('hex');
    this.keys.set(`/${login}${subuser ? `/${subuser}` : ''}/keys/${fp}`, key);
  }

  fault(f: Fault): void {
    this.faults.push({ times: 1, skip: 0, ...f });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  entry(path: string): Readonly<Entry> | undefined {
    return this.entries.get(path);
  }

  /** Every stored path under a prefix, sorted. */
  list(prefix: string): string[] {
    return [...this.entries.keys()].filter((p) => p === prefix || p.startsWith(prefix + '/')).sort();
  }

  async read(path: string): Promise<Buffer> {
    const e = this.entries.get(path);
    if (e?.type !== 'object') throw new Error(`no object ${path}`);
    const chunks: Buffer[] = [];
    for await (const c of createReadStream(e.file)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  /** Seeds an object directly (creating parents), e.g. to set up an md5 conflict; `noMd5`: HEAD and GET answer without Content-MD5. */
  async seed(path: string, body: Buffer | string, contentType = 'application/octet-stream', o: { noMd5?: boolean } = {}): Promise<void> {
    const parts = path.split('/');
    for (let i = 3; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!this.entries.has(d)) this.entries.set(d, { type: 'directory', mtime: new Date() });
    }
    const file = join(this.dir, randomUUID());
    const buf = Buffer.from(body);
    await new Promise<void>((r, j) => createWriteStream(file).on('error', j).end(buf, r));
    this.entries.set(path, {
      type: 'object',
      file,
      md5: createHash('md5').update(buf).digest('base64'),
      size: buf.length,
      contentType,
      etag: randomUUID(),
      mtime: new Date(),
      ...(o.noMd5 ? { noMd5: true } : {}),
    });
  }

  /** Successful object writes per path (what "uploaded twice" means). */
  puts(path?: string): RecordedRequest[] {
    return this.requests.filter((r) => r.method === 'PUT' && r.committed && (path === undefined || r.path === path) && !String(r.headers['content-type']).includes('type=directory'));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
    await rm(this.dir, { recursive: true, force: true });
  }

  private takeFault(method: string, path: string): Fault | undefined {
    for (const f of this.faults) {
      if (f.method && f.method !== method) continue;
      if (f.path !== undefined && (typeof f.path === 'string' ? f.path !== path : !f.path.test(path))) continue;
      if ((f.times ?? 1) <= 0) continue;
      if ((f.skip ?? 0) > 0) {
        f.skip!--;
        continue;
      }
      f.times = (f.times ?? 1) - 1;
      return f;
    }
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://x');
    const rawPath = url.pathname;
    let path: string;
    try {
      path = posix.normalize(rawPath.split('/').map(decodeURIComponent).join('/')).replace(/\/+$/, '') || '/';
    } catch {
      path = rawPath;
    }
    const rec: RecordedRequest = { method, path, bytes: 0, committed: false, presigned: false, headers: { ...req.headers } };
    if (req.headers.authorization) this.authorizations.push(req.headers.authorization);
    delete rec.headers.authorization;
    this.requests.push(rec);
    res.setHeader('x-request-id', String(req.headers['x-request-id'] ?? randomUUID()));
    res.setHeader('x-server-name', 'manta-test');
    res.on('finish', () => {
      rec.status = res.statusCode;
    });
    try {
      const caller = this.authenticate(req, url, rec);
      const login = path.split('/')[1] ?? '';
      if (caller === undefined) {
        if (!((method === 'GET' || method === 'HEAD') && (path === `/${login}/public` || path.startsWith(`/${login}/public/`)))) {
          throw new HttpFail(403, 'AuthorizationRequired', `${method} ${path} requires authentication`);
        }
      } else if (caller !== login) {
        throw new HttpFail(403, 'AuthorizationFailed', `${caller} is not allowed to access ${path}`);
      }
      this.onRequest?.(rec);
      const f = this.takeFault(method, path);
      if (f) {
        rec.fault = f.kind;
        if (f.kind === 'delay') await new Promise((r) => setTimeout(r, f.ms));
        else if (f.kind === 'status') {
          throw new HttpFail(f.status, f.code, f.message ?? f.code, f.retryAfter !== undefined ? { 'retry-after': String(f.retryAfter) } : {});
        } else if (f.kind === 'reset') {
          req.socket.destroy();
          return;
        } else if (f.kind === 'redirect') {
          res.writeHead(f.status, { location: f.location, 'content-length': 0, connection: 'close' }).end();
          if (!req.complete) res.on('finish', () => req.socket.destroy());
          return;
        } else if (f.kind === 'huge') {
          res.writeHead(f.status, { 'content-type': 'application/json', 'content-length': f.bytes, connection: 'close' });
          pipeline(hugeJson(f.bytes), res).catch(() => res.destroy());
          return;
        }
      }
      switch (method) {
        case 'HEAD':
        case 'GET':
          return this.read_(req, res, path, method);
        case 'PUT':
          return await this.put(req, res, path, expectContinue, rec, f);
        case 'DELETE':
          return this.del(res, path);
        default:
          throw new HttpFail(405, 'BadMethod', `${method} is not allowed`);
      }
    } catch (err) {
      this.fail(req, res, err);
    }
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const e = err instanceof HttpFail ? err : new HttpFail(500, 'InternalError', (err as Error).message);
    for (const [k, v] of Object.entries(e.extra)) res.setHeader(k, v);
    if (req.method === 'HEAD') {
      res.writeHead(e.status).end();
    } else {
      const body = JSON.stringify({ code: e.code, message: e.message });
      res.writeHead(e.status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'content-md5': createHash('md5').update(body).digest('base64'),
      });
      res.end(body);
    }
    // An unread request body cannot be skipped on a kept-alive connection.
    if (!req.complete) res.on('finish', () => req.socket.destroy());
  }

  /** The caller's login, or undefined for an anonymous request. */
  private authenticate(req: IncomingMessage, url: URL, rec: RecordedRequest): string | undefined {
    const authz = req.headers.authorization;
    if (authz) {
      const scheme = authz.split(' ')[0].toLowerCase();
      if (scheme !== 'signature') throw new HttpFail(403, 'AuthorizationSchemeNotAllowed', `${scheme} is not a supported scheme`);
      let parsed: { keyId: string; algorithm: string };
      try {
        parsed = httpSignature.parseRequest(req, { clockSkew: this.clockSkewS });
      } catch (err) {
        throw new HttpFail(400, 'InvalidHeader', `Invalid Signature Authorization header: ${(err as Error).message}`);
      }
      if (!SIGN_ALG.has(parsed.algorithm.toUpperCase())) throw new HttpFail(401, 'InvalidAlgorithm', `${parsed.algorithm} is not supported`);
      rec.keyId = parsed.keyId;
      const login = this.checkKeyId(parsed.keyId);
      const key = this.keys.get(parsed.keyId);
      if (!key) throw new HttpFail(403, 'KeyDoesNotExist', `${parsed.keyId} does not exist`);
      if (!httpSignature.verifySignature(parsed, key)) throw new HttpFail(403, 'InvalidSignature', 'The signature we calculated does not match the one you sent');
      return login;
    }
    const q = url.searchParams;
    if (!['expires', 'signature', 'keyId', 'algorithm'].some((k) => q.has(k))) return undefined;
    rec.presigned = true;
    const bad = (m: string): HttpFail => new HttpFail(403, 'InvalidQueryStringAuthentication', m);
    const methods = (q.get('method') ?? req.method ?? '').split(',').sort();
    if (!methods.includes(req.method ?? '')) throw bad(`${req.method} was not a signed method`);
    const missing = ['algorithm', 'expires', 'keyId', 'signature'].filter((k) => !q.get(k));
    if (missing.length) throw bad(`parameters "${missing.join(', ')}" are required`);
    if (Date.now() / 1000 > Number(q.get('expires'))) throw bad('request expired');
    const algorithm = q.get('algorithm')!.toUpperCase();
    if (!SIGN_ALG.has(algorithm)) throw bad(`${algorithm} is not supported`);
    const keyId = q.get('keyId')!;
    const login = this.checkKeyId(keyId);
    const key = this.keys.get(keyId) as { type: string; createVerify(h: string): { update(s: string): void; verify(sig: string, enc: string): boolean } } | undefined;
    if (!key) throw new HttpFail(403, 'KeyDoesNotExist', `${keyId} does not exist`);
    const params = [...q.keys()].filter((k) => k.toLowerCase() !== 'signature').sort((a, b) => a.localeCompare(b));
    const qs = params.map((k) => `${rfc3986(k)}=${rfc3986(q.get(k)!)}`).join('&');
    const line = `${methods.join(',')}\n${req.headers.host}\n${url.pathname}\n${qs}`;
    const [ktype, hash] = algorithm.toLowerCase().split('-') as [string, string];
    if (ktype !== key.type) throw new HttpFail(403, 'InvalidSignature', 'key type does not match the algorithm');
    const v = key.createVerify(hash);
    v.update(line);
    if (!v.verify(q.get('signature')!, 'base64')) throw new HttpFail(403, 'InvalidSignature', 'The signature we calculated does not match the one you sent');
    rec.keyId = keyId;
    return login;
  }

  private checkKeyId(keyId: string): string {
    const parts = keyId.split('/');
    const ok = (parts.length === 4 && parts[2] === 'keys') || (parts.length === 5 && parts[3] === 'keys');
    if (!ok || parts[0] !== '') throw new HttpFail(403, 'InvalidKeyId', `${keyId} is not a valid keyId`);
    const login = decodeURIComponent(parts[1]);
    if (!this.entries.has(`/${login}`)) throw new HttpFail(403, 'AccountDoesNotExist', `${login} does not exist`);
    return login;
  }

  private read_(req: IncomingMessage, res: ServerResponse, path: string, method: string): void {
    const e = this.entries.get(path);
    if (!e) throw new HttpFail(404, 'ResourceNotFound', `${path} was not found`);
    if (e.type === 'directory') {
      const children = [...this.entries.entries()].filter(([p]) => posix.dirname(p) === path && p !== path);
      res.setHeader('content-type', 'application/x-json-stream; type=directory');
      res.setHeader('result-set-size', String(children.length));
      if (method === 'HEAD') return void res.writeHead(200).end();
      const lines = children
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([p, c]) =>
          JSON.stringify(
            c.type === 'directory'
              ? { name: posix.basename(p), type: 'directory', mtime: c.mtime.toISOString() }
              : { name: posix.basename(p), type: 'object', mtime: c.mtime.toISOString(), etag: c.etag, size: c.size, contentType: c.contentType, ...(c.noMd5 ? {} : { contentMD5: c.md5 }), durability: 2 },
          ),
        );
      res.writeHead(200).end(lines.map((l) => l + '\n').join(''));
      return;
    }
    res.writeHead(200, {
      'content-type': e.contentType,
      'content-length': e.size,
      ...(e.noMd5 ? {} : { 'content-md5': e.md5 }),
      etag: e.etag,
      'last-modified': e.mtime.toUTCString(),
      'durability-level': e.size ? '2' : '0',
      ...(method === 'GET' ? { 'accept-ranges': 'bytes' } : {}),
    });
    if (method === 'HEAD') return void res.end();
    createReadStream(e.file).pipe(res);
    void req;
  }

  private checkParent(path: string): void {
    const parent = posix.dirname(path);
    const p = this.entries.get(parent);
    if (!p) throw new HttpFail(404, 'DirectoryDoesNotExist', `${parent} does not exist`);
    if (p.type !== 'directory') throw new HttpFail(400, 'ParentNotDirectory', `${parent} is not a directory`);
  }

  private async put(req: IncomingMessage, res: ServerResponse, path: string, expectContinue: boolean, rec: RecordedRequest, f: Fault | undefined): Promise<void> {
    const segs = path.split('/').filter(Boolean);
    if (segs.length < 2) throw new HttpFail(400, 'OperationNotAllowedOnRootDirectory', `${path} is a root directory`);
    const ctype = String(req.headers['content-type'] ?? '');
    const isRoot = segs.length === 2;
    if (/^application\/json;\s*type=directory/.test(ctype)) {
      if (isRoot) return void res.writeHead(204).end();
      this.checkParent(path);
      const cur = this.entries.get(path);
      // As muskie: PutDirectory replaces an object at that path.
      if (cur?.type !== 'directory') this.entries.set(path, { type: 'directory', mtime: new Date() });
      rec.committed = true;
      if (f?.kind === 'commit-then-reset') return void req.socket.destroy();
      return void res.writeHead(204).end();
    }
    if (/^application\/json;\s*type=link/.test(ctype)) throw new HttpFail(403, 'SnaplinksDisabledError', 'Manta v2 does not support SnapLinks.');
    if (isRoot) throw new HttpFail(400, 'OperationNotAllowedOnRootDirectory', `${path} is a root directory`);
    this.checkParent(path);
    const hasLength = req.headers['content-length'] !== undefined;
    if (this.entries.get(path)?.type === 'directory') {
      if (hasLength) throw new HttpFail(400, 'InvalidUpdate', 'content-length forbidden on a directory');
      throw new HttpFail(400, 'OperationNotAllowedOnDirectory', `${path} is a directory`);
    }
    const sentMd5 = req.headers['content-md5'];
    if (sentMd5 !== undefined && !/^[A-Za-z0-9+/]{22}==$/.test(String(sentMd5))) throw new HttpFail(400, 'BadRequest', 'Content-MD5 invalid');
    const length = hasLength ? Number(req.headers['content-length']) : undefined;
    if (length !== undefined && !(length >= 0)) throw new HttpFail(411, 'ContentLengthRequired', 'Content-Length must be >= 0');
    if (expectContinue && length !== 0) res.writeContinue();

    const file = join(this.dir, `upload-${randomUUID()}`);
    const out: WriteStream = createWriteStream(file);
    const hash = createHash('md5');
    const result = await new Promise<'ok' | 'aborted' | 'timeout' | 'stalled' | 'reset'>((resolve) => {
      let timer = setTimeout(() => resolve('timeout'), this.dataTimeoutMs);
      const bump = (): void => {
        clearTimeout(timer);
        timer = setTimeout(() => resolve('timeout'), this.dataTimeoutMs);
      };
      req.on('data', (c: Buffer) => {
        if (f?.kind === 'reset-mid-upload' && rec.bytes + c.length > f.afterBytes) {
          clearTimeout(timer);
          req.socket.destroy();
          return resolve('reset');
        }
        if (f?.kind === 'stall' && rec.bytes + c.length > f.afterBytes) {
          clearTimeout(timer);
          req.pause();
          req.socket.on('close', () => resolve('stalled'));
          return;
        }
        rec.bytes += c.length;
        hash.update(c);
        bump();
        if (!out.write(c)) {
          req.pause();
          out.once('drain', () => req.resume());
        }
      });
      req.on('end', () => {
        clearTimeout(timer);
        resolve('ok');
      });
      req.on('close', () => {
        clearTimeout(timer);
        if (!req.complete) resolve('aborted');
      });
    });
    await new Promise<void>((r) => out.end(r));
    const discard = (): Promise<void> => rm(file, { force: true });
    if (result === 'timeout') {
      await discard();
      res.setHeader('connection', 'close');
      throw new HttpFail(408, 'UploadTimeout', `No data was received in ${this.dataTimeoutMs / 1000} seconds`);
    }
    if (result !== 'ok' || (length !== undefined && rec.bytes !== length)) {
      await discard();
      res.destroy();
      return;
    }
    const md5 = length === 0 ? EMPTY_MD5 : hash.digest('base64');
    if (sentMd5 !== undefined && length !== 0 && sentMd5 !== md5) {
      await discard();
      throw new HttpFail(400, 'ContentMD5Mismatch', `Content-MD5 expected to be ${String(sentMd5)}, but was ${md5}`);
    }
    const stored = join(this.dir, randomUUID());
    await rename(file, stored);
    const old = this.entries.get(path);
    const entry: ObjEntry = { type: 'object', file: stored, md5, size: rec.bytes, contentType: ctype || 'application/octet-stream', etag: randomUUID(), mtime: new Date() };
    this.entries.set(path, entry);
    if (old?.type === 'object') await rm(old.file, { force: true });
    rec.committed = true;
    if (f?.kind === 'commit-then-reset') {
      req.socket.destroy();
      return;
    }
    res.writeHead(204, { etag: entry.etag, 'last-modified': entry.mtime.toUTCString(), 'computed-md5': md5 }).end();
  }

  private del(res: ServerResponse, path: string): void {
    const e = this.entries.get(path);
    if (!e) throw new HttpFail(404, 'ResourceNotFound', `${path} was not found`);
    if (path.split('/').filter(Boolean).length <= 2) throw new HttpFail(400, 'OperationNotAllowedOnRootDirectory', `${path} is a root directory`);
    if (e.type === 'directory' && [...this.entries.keys()].some((p) => posix.dirname(p) === path && p !== path)) {
      throw new HttpFail(400, 'DirectoryNotEmpty', `${path} is not empty`);
    }
    this.entries.delete(path);
    res.writeHead(204).end();
  }
}

