/**
 * The write side of the test IMGAPI, plugged into ImgapiTestServer: HTTP
 * Signature auth as sdc-imgapi 4.13 does it (app.js getAuthMiddleware:
 * http-signature 0.10 parser, RSA-SHA1/RSA-SHA256/DSA-SHA1 only, keyId =
 * user, every key in `authkeys[user]` tried), and AdminImportImage,
 * AddImageFile, AddImageFileFromUrl, ActivateImage, ChannelAddImage and
 * DeleteImage with the checks, order and error bodies of lib/images.js
 * (imgapi.md §1.5, §2.3–2.7, §6). Manifests are validated with the real
 * imgmanifest, as the server does.
 */
import { createHash, createVerify } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { parseRequest010, SignatureParseError } from './http-signature-010.js';
import { RestError, reqChannel, reqGetImage, reqValidUuid, type Handler, type ImgapiTestServer, type LoggedRequest, type RequestContext, type StoredFile, type StoredImage } from './imgapi-server.js';
import { sshpk } from './ssh-keys.js';

const require = createRequire(import.meta.url);
 
const imgmanifest: any = require('imgmanifest');

const VALID_ALGS = ['RSA-SHA1', 'RSA-SHA256', 'DSA-SHA1'];
const VALID_COMPRESSIONS = ['gzip', 'bzip2', 'xz', 'none'];
const VALID_STORAGES = ['local', 'manta'];
const MAX_IMAGE_SIZE = 20 * 1024 * 1024 * 1024;
const UNSET_OWNER_UUID = '00000000-0000-0000-0000-000000000000';

export interface AdminApiOptions {
  /** user → OpenSSH public key lines (the server's authkeys). */
  authkeys: Record<string, string[]>;
  /** CA the server trusts when it fetches a file_url (the real one trusts only public CAs). */
  fileUrlCa?: string | Buffer;
  /** Let AddImageFileFromUrl fetch http:// URLs (the real server refuses them). */
  allowHttpFileUrl?: boolean;
  clockSkewS?: number;
}

export interface AdminApi {
  authkeys: Record<string, string[]>;
  /** Each file_url fetch: its status (the URL itself is a credential; tests compare it, never print it). */
  fetches: Array<{ url: string; status?: number; error?: string }>;
  /** AdminImportImage bodies as received. */
  importBodies: Array<Record<string, unknown>>;
}

/** The API a logged request was: AdminImportImage, ActivateImage, AddImageFileFromUrl, GetImage… */
export function opOf(r: LoggedRequest): string {
  if (r.route === 'UpdateImage') {
    return { import: 'AdminImportImage', activate: 'ActivateImage', 'channel-add': 'ChannelAddImage' }[r.action ?? ''] ?? `UpdateImage(${r.action})`;
  }
  return r.route ?? `${r.method} ${r.url.split('?')[0]}`;
}

/** The writes a server received, by API name (successful or not). */
export function writes(server: ImgapiTestServer): string[] {
  return server.requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD').map(opOf);
}

function unauthorized(message = 'Unauthorized'): RestError {
  // restify's UnauthorizedError body.
  return new RestError(401, 'UnauthorizedError', message);
}

export function mountAdminApi(server: ImgapiTestServer, opts: AdminApiOptions): AdminApi {
  const api: AdminApi = { authkeys: opts.authkeys, fetches: [], importBodies: [] };

  server.authenticate = (req) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname.slice(server.basePath.length);
    // GetImageFile and GetImageIcon have no auth middleware at all.
    if (req.method === 'GET' && /^\/images\/[^/]+\/(file|icon)\/?$/.test(path)) return undefined;
    if (!req.headers.authorization) return undefined;
    let parsed;
    try {
      parsed = parseRequest010(req, opts.clockSkewS ?? 300);
    } catch (err) {
      if (err instanceof SignatureParseError) throw unauthorized(err.message);
      throw err;
    }
    if (!VALID_ALGS.includes(parsed.algorithm)) {
      throw unauthorized(`Unauthorized ("${parsed.algorithm}" is not a supported http-signature signing algorithm)`);
    }
    const keys = api.authkeys[parsed.keyId];
    if (!keys) throw unauthorized();
    for (const line of keys) {
      let pem: string;
      try {
        const k = sshpk.parseKey(line, 'ssh');
        if (k.type !== 'rsa' && k.type !== 'dsa') continue;
        pem = k.toString('pem');
      } catch {
        continue;
      }
      const v = createVerify(parsed.algorithm);
      v.update(parsed.signingString);
      if (v.verify(pem, parsed.params.signature, 'base64')) return parsed.keyId;
    }
    throw unauthorized();
  };

  const reqAuth: Handler = (ctx) => {
    if (!ctx.remoteUser) throw unauthorized();
    return 'next';
  };

  const bodyParser: Handler = async (ctx) => {
    const raw = await readAll(ctx.req, 1024 * 1024);
    const md5 = ctx.req.headers['content-md5'];
    if (md5 !== undefined && raw.length) {
      const got = createHash('md5').update(raw).digest('base64');
      if (got !== md5) throw new RestError(400, 'BadDigest', `Content-MD5 '${String(md5)}' didn't match '${got}'`);
    }
    let body: unknown = {};
    if (raw.length) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch (err) {
        throw new RestError(400, 'InvalidContent', `Invalid JSON: ${(err as Error).message}`);
      }
    }
    (ctx as Ctx).body = body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
    return 'next' as const;
  };

  const send = (ctx: RequestContext, image: StoredImage): void => {
    const body = server.serialize(image, ctx.version);
    server.sendJson(ctx, 200, body, { Etag: createHash('sha1').update(JSON.stringify(body)).digest('hex') });
  };

  server.route('POST', '/images/:uuid', 'UpdateImage', reqAuth, reqValidUuid, reqChannel(false), bodyParser, (ctx) => {
    if (ctx.query.action !== 'import' || ctx.query.source !== undefined) return 'next';
    const image = adminImport(server, ctx);
    api.importBodies.push(structuredClone((ctx as Ctx).body ?? {}));
    send(ctx, image);
    return undefined;
  }, reqGetImage, (ctx) => {
    const image = ctx.image!;
    const uuid = image.raw.uuid;
    const action = ctx.query.action;
    if (action === 'activate') {
      if (image.raw.activated) throw new RestError(422, 'ImageAlreadyActivated', `image "${uuid}" is already activated`);
      if (!image.files.length) throw new RestError(422, 'NoActivationNoFile', `image "${uuid}" cannot be activated: it has no file`);
      // Imported images keep their published_at; others get now.
      image.raw.published_at ??= new Date().toISOString();
      image.raw.activated = true;
      image.raw.state = image.raw.disabled ? 'disabled' : 'active';
      return send(ctx, image);
    }
    if (action === 'channel-add' && server.channels) {
      const name = (ctx as Ctx).body?.channel;
      if (typeof name !== 'string' || !server.channels.some((c) => c.name === name)) {
        throw new RestError(422, 'ValidationFailed', `unknown channel: ${String(name)}`, [{ field: 'channel', code: 'Invalid' }]);
      }
      if (!image.raw.channels!.includes(name)) image.raw.channels!.push(name);
      return send(ctx, image);
    }
    if (action) throw new RestError(422, 'InvalidParameter', `"${String(action)}" is not a valid action`, [{ field: 'action', code: 'Invalid' }]);
    throw new RestError(422, 'InvalidParameter', 'no image "action" was specified', [{ field: 'action', code: 'MissingParameter' }]);
  });

  server.route('PUT', '/images/:uuid/file', 'AddImageFile', reqAuth, reqValidUuid, reqChannel(false), reqGetImage, async (ctx) => {
    const compression = checkFileParams(ctx);
    const cl = ctx.req.headers['content-length'] === undefined ? undefined : Number(ctx.req.headers['content-length']);
    if (cl !== undefined && cl > MAX_IMAGE_SIZE) throw new RestError(400, 'Upload', `image file size ${cl} (from Content-Length) exceeds the maximum allowed size, 20 GiB`);
    const data = await readAll(ctx.req, MAX_IMAGE_SIZE);
    if (!data.length) throw new RestError(400, 'Download', 'image file size is 0 bytes, empty files are not allowed');
    if (cl && data.length !== cl) throw new RestError(400, 'Download', `"Content-Length" header, ${cl}, does not match uploaded size, ${data.length}`);
    const file = fileRecord(data, compression, ctx);
    if (ctx.query.sha1 && ctx.query.sha1 !== file.sha1) {
      throw new RestError(400, 'Download', `"sha1" hash, ${String(ctx.query.sha1)}, does not match the uploaded file sha1 hash, ${file.sha1}`);
    }
    finishFile(server, ctx, file);
    send(ctx, ctx.image!);
  });

  server.route('POST', '/images/:uuid/file/from-url', 'AddImageFileFromUrl', reqAuth, reqValidUuid, reqChannel(false), reqGetImage, bodyParser, async (ctx) => {
    const compression = checkFileParams(ctx);
    const fileUrl = (ctx as Ctx).body?.file_url;
    if (fileUrl === undefined) throw new RestError(422, 'InvalidParameter', 'missing "file_url" field from request body', [{ field: 'file_url', code: 'Missing' }]);
    if (typeof fileUrl !== 'string' || !(fileUrl.startsWith('https:') || (opts.allowHttpFileUrl && fileUrl.startsWith('http:')))) {
      throw new RestError(422, 'InvalidParameter', 'Only URLs using the https: scheme are supported', [{ field: 'file_url', code: 'Invalid' }]);
    }
    const fetch = { url: fileUrl } as AdminApi['fetches'][number];
    api.fetches.push(fetch);
    const data = await download(fileUrl, opts.fileUrlCa).catch((err: Error) => {
      fetch.error = err.message;
      throw new RestError(400, 'Download', `Error getting image: ${err.message}`);
    });
    fetch.status = data.status;
    if (data.status !== 200) throw new RestError(400, 'Download', `HTTP ${data.status} error attempting to download image`);
    if (!data.body.length) throw new RestError(400, 'Download', 'image file size is 0 bytes, empty files are not allowed');
    const file = fileRecord(data.body, compression, ctx);
    if (ctx.query.sha1 && ctx.query.sha1 !== file.sha1) {
      throw new RestError(400, 'Download', `expected sha1 hash, ${String(ctx.query.sha1)}, does not match the uploaded file sha1 hash, ${file.sha1}`);
    }
    finishFile(server, ctx, file);
    send(ctx, ctx.image!);
  });

  server.route('DELETE', '/images/:uuid', 'DeleteImage', reqAuth, reqValidUuid, reqChannel(false), reqGetImage, (ctx) => {
    const image = ctx.image!;
    const uuid = image.raw.uuid;
    const deps = [...server.store.values()].filter((i) => i.raw.origin === uuid && (!ctx.channel || i.raw.channels?.includes(ctx.channel.name)));
    if (deps.length) {
      throw new RestError(422, 'ImageHasDependentImages', `image "${uuid}" has dependent images: ${deps.map((d) => d.raw.uuid).join(', ')}`);
    }
    if (ctx.channel && (image.raw.channels?.length ?? 0) > 1 && ctx.query.force_all_channels !== 'true') {
      image.raw.channels = image.raw.channels!.filter((c) => c !== ctx.channel!.name);
    } else {
      server.store.delete(uuid);
    }
    ctx.res.writeHead(204).end();
  });

  return api;
}

type Ctx = RequestContext & { body?: Record<string, unknown> };

/** apiAdminImportImage + Image.create + validateAndNormalize. */
function adminImport(server: ImgapiTestServer, ctx: Ctx): StoredImage {
  if (ctx.query.account) throw new RestError(403, 'OperatorOnly', 'operator only');
  const data = { ...(ctx.body ?? {}) } as Record<string, unknown>;
  const uuid = ctx.params.uuid;
  if (uuid !== data.uuid) {
    throw new RestError(422, 'InvalidParameter', `URL UUID, "${uuid}" and body UUID, "${String(data.uuid)}" do not match`, [{ field: 'uuid', code: 'Invalid' }]);
  }
  delete data.channels;
  if (ctx.channel) data.channels = [ctx.channel.name];
  const existing = server.store.get(uuid);
  if (existing && existing.raw.state !== 'creating') throw new RestError(409, 'ImageUuidAlreadyExists', `image uuid "${uuid}" already exists`);
  if (typeof data.origin === 'string' && !server.store.has(data.origin)) {
    throw new RestError(422, 'OriginDoesNotExist', `origin image "${data.origin}" does not exist`);
  }
  if (server.mode !== 'dc') data.owner = UNSET_OWNER_UUID;
  const raw = createRaw(data);
  validate(server, raw);
  const image: StoredImage = { raw: raw as StoredImage['raw'], files: [] };
  server.store.set(uuid, image);
  return image;
}

const COPIED = ['description', 'homepage', 'eula', 'icon'];
const COPIED_DEFINED = ['error', 'requirements', 'users', 'traits', 'tags', 'billing_tags', 'generate_passwords', 'inherited_directories', 'origin', 'channels'];

/** Image.create(isImport=true): the raw record, or InvalidParameter for what it does not take. */
function createRaw(input: Record<string, unknown>): Record<string, unknown> {
  const data = { ...input };
  const raw: Record<string, unknown> = {
    v: data.v,
    owner: data.owner,
    name: data.name,
    version: data.version,
    type: data.type,
    os: data.os,
    public: data.public || false,
    disabled: data.disabled || false,
    activated: false,
    state: 'unactivated',
    acl: data.acl,
  };
  for (const k of COPIED) if (data[k]) raw[k] = data[k];
  for (const k of COPIED_DEFINED) if (data[k] !== undefined) raw[k] = data[k];
  for (const k of ['v', 'owner', 'name', 'version', 'type', 'os', 'public', 'disabled', 'acl', ...COPIED, ...COPIED_DEFINED]) delete data[k];
  if (raw.type === 'zvol') {
    for (const k of ['nic_driver', 'disk_driver', 'cpu_type']) {
      raw[k] = data[k];
      delete data[k];
    }
    raw.image_size = Number(data.image_size);
    delete data.image_size;
  }
  raw.uuid = data.uuid;
  delete data.uuid;
  if (data.published_at && typeof data.published_at !== 'string') {
    throw new RestError(422, 'InvalidParameter', 'invalid "published_at"', [{ field: 'published_at', code: 'Invalid' }]);
  }
  for (const k of ['published_at', 'urn']) {
    if (!data[k]) continue;
    raw[k] = data[k];
    delete data[k];
  }
  delete data.files;
  delete data.state;
  const extra = Object.keys(data);
  if (extra.length) {
    throw new RestError(422, 'InvalidParameter', `invalid extra parameters: "${extra.join('", "')}"`, extra.map((f) => ({ field: f, code: 'Invalid' })));
  }
  for (const k of Object.keys(raw)) if (raw[k] === undefined) delete raw[k];
  return raw;
}

const VALIDATED = ['v', 'uuid', 'name', 'version', 'description', 'homepage', 'eula', 'disabled', 'activated', 'state', 'published_at', 'public', 'type', 'os', 'origin', 'icon', 'generate_passwords', 'nic_driver', 'disk_driver', 'cpu_type', 'image_size', 'error', 'files', 'requirements', 'users', 'traits', 'inherited_directories', 'owner', 'channels', 'tags', 'billing_tags'];

function validate(server: ImgapiTestServer, raw: Record<string, unknown>): void {
  const errs: Array<{ field: string; code: string; message?: string }> = [];
  const manifest: Record<string, unknown> = {};
  for (const k of VALIDATED) if (Object.prototype.hasOwnProperty.call(raw, k)) manifest[k] = raw[k];
  if (raw.icon) {
    const icon = raw.icon as { contentMD5?: unknown };
    if (!icon.contentMD5) errs.push({ field: 'icon', code: 'Invalid', message: 'invalid image "icon": icon missing "contentMD5" field' });
    else manifest.icon = true;
  }
  if (raw.acl === undefined) raw.acl = [];
  else if (typeof raw.acl === 'string') manifest.acl = raw.acl = [raw.acl];
  else manifest.acl = raw.acl;
  if (typeof raw.billing_tags === 'string') manifest.billing_tags = raw.billing_tags = [raw.billing_tags];
  const channelFromName = server.channels ? Object.fromEntries(server.channels.map((c) => [c.name, c])) : undefined;
  const fn = server.mode === 'public' ? imgmanifest.validatePublicManifest : server.mode === 'private' ? imgmanifest.validatePrivateManifest : imgmanifest.validateDcManifest;
  const found = fn(manifest, { channelFromName }) as typeof errs | null;
  if (found?.length) errs.push(...found);
  if (errs.length) throw new RestError(422, 'ValidationFailed', `invalid image data: ${errs.map((e) => e.field).join(', ')}`, errs);
}

/** apiAddImageFile/FromUrl's checks before any bytes: activated, compression, storage. */
function checkFileParams(ctx: RequestContext): string {
  const image = ctx.image!;
  if (image.raw.activated) throw new RestError(422, 'ImageFilesImmutable', `cannot modify files on activated image ${image.raw.uuid}`);
  const compression = ctx.query.compression;
  if (!compression) throw new RestError(422, 'InvalidParameter', 'missing "compression"', [{ field: 'compression', code: 'Missing' }]);
  if (typeof compression !== 'string' || !VALID_COMPRESSIONS.includes(compression)) {
    throw new RestError(422, 'InvalidParameter', `invalid compression "${String(compression)}" (must be one of ${VALID_COMPRESSIONS.join(', ')})`, [{ field: 'compression', code: 'Invalid' }]);
  }
  const storage = ctx.query.storage;
  if (storage && (typeof storage !== 'string' || !VALID_STORAGES.includes(storage))) {
    throw new RestError(422, 'InvalidParameter', `invalid storage "${String(storage)}" (must be one of ${VALID_STORAGES.join(', ')})`, [{ field: 'storage', code: 'Invalid' }]);
  }
  return compression;
}

function fileRecord(data: Buffer, compression: string, ctx: RequestContext): StoredFile {
  return {
    sha1: createHash('sha1').update(data).digest('hex'),
    size: data.length,
    compression,
    ...(typeof ctx.query.dataset_guid === 'string' ? { dataset_guid: ctx.query.dataset_guid } : {}),
    contentMD5: createHash('md5').update(data).digest('base64'),
    mtime: new Date().toISOString(),
    data,
  };
}

/** finishMoveImageFile: the image is read again after the long transfer. */
function finishFile(server: ImgapiTestServer, ctx: RequestContext, file: StoredFile): void {
  const image = server.store.get(ctx.params.uuid);
  if (!image) throw new RestError(404, 'ResourceNotFound', `image ${ctx.params.uuid} not found`);
  if (image.raw.activated) throw new RestError(422, 'ImageAlreadyActivated', `image "${image.raw.uuid}" is already activated`);
  image.files = [file];
  ctx.image = image;
}

async function readAll(stream: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    n += (c as Buffer).length;
    if (n > max) throw new RestError(400, 'Upload', `request body exceeds ${max} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The server's plain GET: no redirects followed, its own User-Agent. */
function download(url: string, ca: string | Buffer | undefined): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.get(u, { headers: { 'User-Agent': 'imgapi-test' }, ...(u.protocol === 'https:' ? { ca } : {}) }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return resolve({ status: res.statusCode ?? 0, body: Buffer.alloc(0) });
      }
      readAll(res, MAX_IMAGE_SIZE).then((body) => resolve({ status: 200, body }), reject);
    });
    req.on('error', reject);
  });
}
