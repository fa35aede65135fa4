/**
 * The write side of IMGAPI (imgapi.md §2.3–2.7) for publishing: every call
 * signed as sdc-clients signs it (§3), `Accept-Version: ~2`, the channel
 * always explicit. Only GETs are retried here: a write that fails is
 * reconciled by the caller from a fresh GetImage, never sent blindly again.
 * Errors are one line with the server's code, message and `errors[]`;
 * the presigned file URL (a credential) never appears in one.
 */
import { createHash } from 'node:crypto';
import { asText } from '../core/errors.js';
import { readNoFollow } from '../core/files.js';
import type { Signer } from '../http/signature.js';
import { abortReason, interruptSignal } from '../core/interrupt.js';
import { log } from '../core/log.js';
import type { Compression, ImageManifest } from '../image/manifest/types.js';
import { serverErrorLine } from '../http/network-errors.js';
import { imgapiAuthHeaders } from './auth.js';
import { redactUrl } from '../core/redact.js';
import { ImgapiClient, ImgapiError, type Answer, type ImgapiClientOptions } from './client.js';

export interface ImgapiAdminOptions extends ImgapiClientOptions {
  /** UPDATES_IMGADM_USER: the keyId IMGAPI looks keys up by. */
  user: string;
  signer: Signer;
  /** AddImageFile*: IMGAPI answers only once the whole file is stored. Default 1 h (the server's own socket timeout). */
  fileTimeoutMs?: number;
}


export interface FileParams {
  compression: Compression;
  sha1: string;
  channel: string;
}

/** A write's method, path and query as sent (no credentials): for --dry-run and logs. */
export interface CallLine {
  method: string;
  path: string;
  query: Record<string, string | undefined>;
}

export class ImgapiAdminClient extends ImgapiClient {
  readonly user: string;
  readonly signer: Signer;
  private readonly fileTimeoutMs: number;

  constructor(o: ImgapiAdminOptions) {
    super(o);
    this.user = o.user;
    this.signer = o.signer;
    this.fileTimeoutMs = o.fileTimeoutMs ?? 60 * 60_000;
  }

  /** Who we sign as, for messages: never key material. */
  get who(): string {
    return `user "${this.user}" with key ${this.signer.fingerprint}`;
  }

  /** GET /ping, signed: a bad key is a 401 here (passive auth), and the server names the user it verified. */
  async whoami(): Promise<{ user?: string; version?: string }> {
    return this.signedGet('ping', '/ping', {});
  }

  /** GET /images/:uuid?channel=* — any channel, any state (§4.2); undefined when the server has no such image. */
  async findImage(uuid: string): Promise<ImageManifest | undefined> {
    try {
      const what = `image ${this.checkUuid(uuid)}`;
      return this.checkImage(what, await this.signedGet<unknown>(what, `/images/${encodeURIComponent(uuid)}`, { channel: '*' }), uuid);
    } catch (err) {
      if (err instanceof ImgapiError && err.statusCode === 404 && err.restCode === 'ResourceNotFound') return undefined;
      throw err;
    }
  }

  /** AdminImportImage (§2.3): a new unactivated image in `channel`. */
  async adminImportImage(manifest: Record<string, unknown> & { uuid: string }, channel: string): Promise<ImageManifest> {
    return this.write(manifest.uuid, `import image ${manifest.uuid}`, this.importCall(manifest.uuid, channel), { json: manifest });
  }

  importCall(uuid: string, channel: string): CallLine {
    return { method: 'POST', path: this.imagePath(uuid), query: { channel, action: 'import' } };
  }

  /** AddImageFileFromUrl (§2.4a): IMGAPI downloads `fileUrl` (https only, no redirects). */
  async addImageFileFromUrl(uuid: string, fileUrl: string, p: FileParams): Promise<ImageManifest> {
    return this.write(uuid, `add file to image ${uuid} from the Manta URL`, this.fromUrlCall(uuid, p), { json: { file_url: fileUrl }, timeoutMs: this.fileTimeoutMs, secrets: [fileUrl] });
  }

  fromUrlCall(uuid: string, p: FileParams): CallLine {
    return { method: 'POST', path: `${this.imagePath(uuid)}/file/from-url`, query: { channel: p.channel, compression: p.compression, sha1: p.sha1 } };
  }

  /** AddImageFile (§2.4b): streams the local file. */
  async addImageFile(uuid: string, file: { path: string; size: number }, p: FileParams): Promise<ImageManifest> {
    return this.write(uuid, `upload file of image ${uuid}`, this.uploadCall(uuid, p), { file, timeoutMs: this.fileTimeoutMs });
  }

  uploadCall(uuid: string, p: FileParams): CallLine {
    return { method: 'PUT', path: `${this.imagePath(uuid)}/file`, query: { channel: p.channel, compression: p.compression, sha1: p.sha1 } };
  }

  /** ActivateImage (§2.5). */
  async activateImage(uuid: string, channel: string): Promise<ImageManifest> {
    return this.write(uuid, `activate image ${uuid}`, this.activateCall(uuid, channel), {});
  }

  activateCall(uuid: string, channel: string): CallLine {
    return { method: 'POST', path: this.imagePath(uuid), query: { channel, action: 'activate' } };
  }

  /** ChannelAddImage (§2.7): `from` must be a channel the image is already in. */
  async channelAddImage(uuid: string, from: string, to: string): Promise<ImageManifest> {
    return this.write(uuid, `add image ${uuid} to channel ${to}`, this.channelAddCall(uuid, from), { json: { channel: to } });
  }

  channelAddCall(uuid: string, from: string): CallLine {
    return { method: 'POST', path: this.imagePath(uuid), query: { channel: from, action: 'channel-add' } };
  }

  /** `POST https://host/images/U?channel=dev&action=import`, as --dry-run shows it. */
  callText(c: CallLine): string {
    const u = this.requestUrl(c.path, c.query);
    return `${c.method} ${this.url}${c.path}${u.search}`;
  }

  // ---- internals

  /** `/images/<uuid>`: only a valid uuid, encoded, ever goes into a write's path. */
  private imagePath(uuid: string): string {
    return `/images/${encodeURIComponent(this.checkUuid(uuid))}`;
  }

  private async authHeaders(): Promise<Record<string, string>> {
    return { ...this.headers(), ...(await imgapiAuthHeaders(this.signer, this.user)) };
  }

  private signedGet<T>(what: string, path: string, query: Record<string, unknown>): Promise<T> {
    // Signed afresh for every attempt: the Date must be within 300 s of the server's clock.
    return this.fetchJson(what, path, query, () => this.authHeaders(), (res) => this.adminError(what, res, res.body, []), true);
  }


  private async write(
    uuid: string,
    what: string,
    call: CallLine,
    o: { json?: unknown; file?: { path: string; size: number }; timeoutMs?: number; secrets?: string[] },
  ): Promise<ImageManifest> {
    const headers = await this.authHeaders();
    let body: Buffer | NodeJS.ReadableStream | undefined;
    if (o.json !== undefined) {
      const data = Buffer.from(JSON.stringify(o.json));
      body = data;
      headers['content-type'] = 'application/json';
      // As restify-clients: the server checks it (400 BadDigest on a mangled body).
      headers['content-md5'] = createHash('md5').update(data).digest('base64');
      headers['content-length'] = String(data.length);
    } else if (o.file) {
      // O_NOFOLLOW: a file swapped for a link after it was hashed is not sent.
      body = readNoFollow(o.file.path);
      headers['content-type'] = 'application/octet-stream';
      headers['content-length'] = String(o.file.size);
    } else {
      headers['content-length'] = '0';
    }
    log.debug(`IMGAPI ${this.callText(call)}`);
    const signal = interruptSignal();
    let res: Answer;
    try {
      res = await this.send(what, this.requestUrl(call.path, call.query), {
        method: call.method as 'POST' | 'PUT',
        headers,
        body,
        timeout: o.timeoutMs ? { connect: this.opts.connectTimeoutMs, response: o.timeoutMs } : { connect: this.opts.connectTimeoutMs, request: this.opts.timeoutMs },
        signal,
        signed: true,
      });
    } catch (err) {
      if (signal.aborted) throw abortReason(signal);
      const e = this.toImgapiError(what, err);
      throw new ImgapiError(scrub(e.message, o.secrets ?? []), { statusCode: e.statusCode, retryable: e.retryable, hint: e.hint });
    }
    if (res.statusCode < 200 || res.statusCode >= 300) throw this.adminError(what, res, res.body, o.secrets ?? []);
    return this.checkImage(what, this.parseJson<unknown>(what, res), uuid);
  }

  /** One line: status, the server's code and message with its `errors[]`; for 401/403 the hint names who we signed as. */
  private adminError(what: string, res: Answer, body: Buffer, secrets: string[]): ImgapiError {
    const e = this.httpError(what, res, body);
    const parsed = (e.body && typeof e.body === 'object' ? e.body : {}) as { message?: unknown; errors?: unknown };
    const fields = Array.isArray(parsed.errors)
      ? (parsed.errors as Array<{ field?: unknown; code?: unknown; message?: unknown }>).map(
          (f) => `${asText(f.field)}: ${asText(f.code)}${f.message ? `, ${asText(f.message)}` : ''}`,
        )
      : [];
    let message = e.message;
    if (fields.length && e.restCode) {
      const text = [typeof parsed.message === 'string' ? parsed.message : '', ...fields].filter(Boolean).join('; ');
      message = serverErrorLine(`IMGAPI ${this.url}: ${what}`, { status: res.statusCode, code: e.restCode, message: text });
    }
    let hint = e.hint;
    if (res.statusCode === 401 || res.statusCode === 403) {
      const reason = typeof parsed.message === 'string' ? parsed.message : '';
      hint = /clock skew/i.test(reason)
        ? "check this host's clock (IMGAPI allows 300 s of skew)"
        : `check UPDATES_IMGADM_USER and UPDATES_IMGADM_IDENTITY: IMGAPI must have key ${this.signer.fingerprint} from ${this.signer.source} for user "${this.user}"`;
    }
    return new ImgapiError(scrub(message, secrets), {
      statusCode: e.statusCode,
      restCode: e.restCode,
      body: e.body,
      retryable: e.retryable,
      retryAfterMs: e.retryAfterMs,
      hint,
    });
  }
}

/** Removes a presigned URL (and its query alone) from a message a server or proxy may echo it in. */
function scrub(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) {
    let q = '';
    try {
      q = new URL(s).search;
    } catch {
      // not a URL
    }
    out = out.split(s).join(redactUrl(s));
    if (q.length > 1) out = out.split(q).join('');
  }
  return out;
}
