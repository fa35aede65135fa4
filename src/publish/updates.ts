/**
 * `publish -p`: importing each image into the updates IMGAPI, replacing
 * bits-upload.sh's `updates-imgadm import -m MANIFEST -f <msign URL>`.
 * Idempotent (imgapi.md §2.10): each round reads the image (any channel,
 * any state) and makes the one call that is still missing — import, add
 * to our channel, add the file, activate — so a rerun after a kill at
 * any point finishes without doing anything twice. A write that fails
 * with a transient error is not resent blindly: the image is read again
 * and the next call decided from what the server really has.
 */
import { PublishError } from '../core/errors.js';
import { KeyError } from '../http/keys.js';
import { Backoff, DEFAULT_RETRY, pause, retryLine, type RetryPolicy } from '../core/retry.js';
import { ImgapiAdminClient, type CallLine, type FileParams } from '../imgapi/admin.js';
import { ImgapiError } from '../imgapi/client.js';
import { decide, planSteps, type Decision } from '../imgapi/import-state.js';
import { interruptSignal, throwIfInterrupted } from '../core/interrupt.js';
import { log } from '../core/log.js';
import { isUuid, type ImageManifest } from '../image/manifest/types.js';
import type { ImgapiImporter, ImportRequest, ImportStep } from './importer.js';
import { sshDirOf, updatesEnv, updatesSigner } from './env.js';
import { readImportInput, type ImportInput } from './updates-input.js';

type Step = Extract<Decision, { kind: 'step' }>;

export interface UpdatesImporterOptions {
  client: ImgapiAdminClient;
  /** --upload-file: PUT the local file rather than have IMGAPI fetch the presigned Manta URL. */
  uploadFile?: boolean;
  retry?: RetryPolicy;
  /** After a gateway timeout on AddImageFileFromUrl, how long to watch for the file IMGAPI may still be storing (§2.9). */
  fileWaitMs?: number;
  pollMs?: number;
}

/** IMGAPI answers that mean "the image moved on since we looked": look again rather than fail. */
const STATE_MOVED = new Set(['ImageUuidAlreadyExists', 'ImageAlreadyActivated', 'ImageFilesImmutable', 'NoActivationNoFile', 'ResourceNotFound']);

export class UpdatesImporter implements ImgapiImporter {
  private readonly client: ImgapiAdminClient;
  private readonly o: UpdatesImporterOptions;

  constructor(o: UpdatesImporterOptions) {
    this.client = o.client;
    this.o = o;
  }

  get description(): string {
    return `${this.client.url} as ${this.client.who}`;
  }

  /** Before anything is uploaded to Manta: are the server and the credentials good? */
  async check(): Promise<void> {
    const pong = await this.call(() => this.client.whoami());
    if (pong.user && pong.user !== this.client.user) log.warn(`updates IMGAPI says we are "${pong.user}", not "${this.client.user}"`);
    log.debug(`updates IMGAPI ${this.description}: credentials accepted`);
  }

  async plan(req: ImportRequest): Promise<ImportStep> {
    let input: ImportInput;
    try {
      input = await readImportInput(req, req.channel);
    } catch (err) {
      if (err instanceof PublishError) return { uuid: req.uuid, action: 'conflict', detail: err.message };
      throw err;
    }
    const image = await this.call(() => this.client.findImage(req.uuid));
    const { steps, end } = planSteps(image, input.want);
    if (end.kind === 'conflict') return { uuid: req.uuid, action: 'conflict', detail: end.reason, calls: [] };
    if (steps[0]?.step === 'import') {
      const problem = await this.originProblem(input, req.channel);
      if (problem) return { uuid: req.uuid, action: 'conflict', detail: problem, calls: [] };
    }
    const calls = steps.map((s) => this.callText(s, input, req));
    const state = image ? `${image.state ?? 'active'} in ${(image.channels ?? []).join(', ') || 'no channel'}` : 'not on the server';
    const action = !steps.length ? 'skip' : !image ? 'import' : steps.length === 1 && steps[0].step === 'channel-add' ? 'add-channel' : 'finish';
    const detail = steps.length ? `${state}: ${steps.map((s) => s.step).join(', ')}` : `already ${end.kind === 'done' ? end.state : 'active'} in channel ${req.channel} with the same file (sha1 ${input.want.sha1})`;
    return { uuid: req.uuid, action, detail, calls };
  }

  async apply(req: ImportRequest): Promise<ImportStep> {
    const input = await readImportInput(req, req.channel);
    if (input.dropped.length) log.warn(`${req.manifestFile}: leaving out ${input.dropped.join(', ')} (AdminImportImage does not accept them)`);
    const uuid = req.uuid;
    const initial = await this.call(() => this.client.findImage(uuid));
    let image = initial;
    const done: Step[] = [];
    const calls: string[] = [];
    const policy = this.o.retry ?? DEFAULT_RETRY;
    let failures = 0;
    let rounds = 0;
    let pending: Step | undefined;
    // Not withRetry: a failed call is followed by a fresh read, and the next call is decided from it.
    const backoff = new Backoff(policy);
    for (;;) {
      throwIfInterrupted();
      const d = decide(image, input.want);
      // A call whose answer was lost but whose effect a fresh read shows: done, and its retry budget spent no further.
      if (pending && (d.kind !== 'step' || d.step !== pending.step)) {
        done.push(pending);
        calls.push(this.callText(pending, input, req));
        log.info(`updates IMGAPI: ${this.doneText(pending, req)} (its answer was lost)`);
        failures = 0;
        backoff.reset();
      }
      pending = undefined;
      if (d.kind === 'conflict') {
        throw new PublishError(d.reason, { hint: 'an image uuid is published once: build again (a new uuid), or delete the other image with updates-imgadm' });
      }
      if (d.kind === 'done') return this.result(req, initial, done, calls, d.state, input);
      if (d.step === 'import') {
        const problem = await this.originProblem(input, req.channel);
        if (problem) throw new PublishError(problem, { hint: 'publish the origin image first' });
      }
      if (++rounds > 16) throw new PublishError(`importing ${uuid} into ${this.client.url} does not settle (server state keeps changing)`);
      try {
        image = await this.run(d, input, req);
        failures = 0;
        backoff.reset();
        done.push(d);
        calls.push(this.callText(d, input, req));
        log.info(`updates IMGAPI: ${this.doneText(d, req)}`);
      } catch (err) {
        if (!(err instanceof ImgapiError) || !this.recoverable(err) || ++failures >= policy.attempts) throw this.publishError(err);
        pending = d;
        // "The image moved on" needs no wait, only a fresh look.
        const moved = err.restCode !== undefined && STATE_MOVED.has(err.restCode);
        const wait = moved ? 0 : backoff.next(err);
        log.warn(retryLine(err, failures, policy.attempts, wait));
        if (wait) await pause(wait, interruptSignal(), err);
        image =
          d.step === 'add-file' && !this.o.uploadFile && isGatewayTimeout(err)
            ? await this.waitForFile(uuid)
            : await this.call(() => this.client.findImage(uuid));
      }
    }
  }

  // ---- internals

  private fileParams(input: ImportInput, channel: string): FileParams {
    return { compression: input.compression, sha1: input.want.sha1, channel };
  }

  private line(d: Step, input: ImportInput, req: ImportRequest): CallLine {
    const c = this.client;
    switch (d.step) {
      case 'import':
        return c.importCall(req.uuid, req.channel);
      case 'channel-add':
        return c.channelAddCall(req.uuid, d.from!);
      case 'add-file':
        return this.o.uploadFile ? c.uploadCall(req.uuid, this.fileParams(input, req.channel)) : c.fromUrlCall(req.uuid, this.fileParams(input, req.channel));
      case 'activate':
        return c.activateCall(req.uuid, req.channel);
    }
  }

  /** The call as --dry-run prints it; bodies described, never the presigned URL. */
  private callText(d: Step, input: ImportInput, req: ImportRequest): string {
    const text = this.client.callText(this.line(d, input, req));
    switch (d.step) {
      case 'import':
        return `${text} (manifest ${input.manifest.name} ${input.manifest.version})`;
      case 'channel-add':
        return `${text} {"channel":"${req.channel}"}`;
      case 'add-file':
        return this.o.uploadFile ? `${text} (${input.want.size} bytes from ${req.imageFile})` : `${text} (file_url: presigned Manta URL of ${req.imagePath})`;
      case 'activate':
        return text;
    }
  }

  private doneText(d: Step, req: ImportRequest): string {
    switch (d.step) {
      case 'import':
        return `imported ${req.uuid} into channel ${req.channel} (unactivated)`;
      case 'channel-add':
        return `added ${req.uuid} to channel ${req.channel} (it was in ${d.from})`;
      case 'add-file':
        return `added the file of ${req.uuid} ${this.o.uploadFile ? `from ${req.imageFile}` : `from ${req.imagePath} in Manta`}`;
      case 'activate':
        return `activated ${req.uuid}`;
    }
  }

  private async run(d: Step, input: ImportInput, req: ImportRequest): Promise<ImageManifest> {
    const c = this.client;
    switch (d.step) {
      case 'import':
        return c.adminImportImage(input.body, req.channel);
      case 'channel-add':
        return c.channelAddImage(req.uuid, d.from!, req.channel);
      case 'activate':
        return c.activateImage(req.uuid, req.channel);
      case 'add-file': {
        const p = this.fileParams(input, req.channel);
        const out = this.o.uploadFile
          ? await c.addImageFile(req.uuid, { path: req.imageFile, size: input.want.size }, p)
          : await c.addImageFileFromUrl(req.uuid, await req.imageUrl(), p);
        // As updates-imgadm after an upload: the server's record must be our file.
        const f = out.files?.[0];
        if (!f || f.sha1 !== input.want.sha1 || f.size !== input.want.size) {
          throw new PublishError(`IMGAPI stored a file for ${req.uuid} with sha1 ${f?.sha1}, ${f?.size} bytes; expected sha1 ${input.want.sha1}, ${input.want.size} bytes`);
        }
        return out;
      }
    }
  }

  private result(req: ImportRequest, initial: ImageManifest | undefined, done: Step[], calls: string[], state: string, input: ImportInput): ImportStep {
    const where = `${state} in channel ${req.channel} (sha1 ${input.want.sha1}, ${input.want.size} bytes)`;
    if (!done.length) return { uuid: req.uuid, action: 'already there', detail: where, calls };
    const names = done.map((d) => d.step).join(', ');
    if (!initial) return { uuid: req.uuid, action: 'imported', detail: `${names}: ${where}`, calls };
    if (done.length === 1 && done[0].step === 'channel-add') {
      return { uuid: req.uuid, action: 'channel-added', detail: `was ${initial.state} in ${(initial.channels ?? []).join(', ')}; now ${where}`, calls };
    }
    return { uuid: req.uuid, action: 'finished', detail: `found ${initial.state ?? 'unactivated'} from an earlier run; ${names}: ${where}`, calls };
  }

  /** Checked before importing (read-only): IMGAPI refuses an import whose origin it lacks. */
  private async originProblem(input: ImportInput, channel: string): Promise<string | undefined> {
    const origin = input.manifest.origin;
    // An empty origin is not "none": IMGAPI would refuse the import (OriginDoesNotExist), so it is a conflict here.
    if (origin === undefined) return undefined;
    if (!isUuid(origin)) return `image ${input.want.uuid}: its "origin" ${JSON.stringify(origin).slice(0, 80)} is not a uuid`;
    const o = await this.call(() => this.client.findImage(origin));
    if (!o) return `origin image ${origin} of ${input.want.uuid} is not on ${this.client.url}`;
    // imgadm resolves origins in the importing channel (§5.2); IMGAPI does not check.
    if (o.channels && !o.channels.includes(channel)) {
      log.warn(`origin image ${origin} is not in channel ${channel} (only ${o.channels.join(', ')}): imgadm cannot install ${input.want.uuid} from ${channel} until it is added`);
    }
    return undefined;
  }

  private recoverable(e: ImgapiError): boolean {
    if (e.retryable) return true;
    if (e.restCode && STATE_MOVED.has(e.restCode)) return true;
    // IMGAPI's own download from Manta hit a Manta 5xx: nothing was stored.
    return e.restCode === 'Download' && /HTTP 5\d\d /.test(e.message);
  }

  /** §2.9: a proxy may give up on a long download while IMGAPI keeps going; watch before sending it again. */
  private async waitForFile(uuid: string): Promise<ImageManifest | undefined> {
    const until = Date.now() + (this.o.fileWaitMs ?? 20 * 60_000);
    const poll = this.o.pollMs ?? 15_000;
    for (;;) {
      const image = await this.call(() => this.client.findImage(uuid));
      if (!image || image.files?.length || image.state !== 'unactivated' || Date.now() >= until) return image;
      log.info(`updates IMGAPI: waiting for the file of ${uuid} (IMGAPI may still be downloading it)`);
      await pause(poll, interruptSignal());
    }
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.publishError(err);
    }
  }

  private publishError(err: unknown): unknown {
    if (interruptSignal().aborted) return interruptSignal().reason;
    if (err instanceof ImgapiError) {
      return new PublishError(err.message, { hint: err.hint ?? hintFor(err) });
    }
    return err;
  }
}

function hintFor(e: ImgapiError): string {
  const fields = (e.body as { errors?: Array<{ field?: string }> } | undefined)?.errors?.map((f) => f.field) ?? [];
  // AddImageFileFromUrl: IMGAPI itself GETs the presigned URL, over https with public CAs only, no redirects.
  if (e.restCode === 'Download' || fields.includes('file_url')) {
    return 'IMGAPI fetches the image from Manta itself (https, a certificate it trusts); check Manta is reachable from it, or use --upload-file';
  }
  // A rerun helps only where the next try may go through (network, 5xx, throttling); a 4xx refusal comes back the same.
  if (e.retryable || e.statusCode === undefined || e.statusCode >= 500) return 'rerun to continue: the import resumes where it stopped';
  return 'IMGAPI refused it: a rerun would fail the same way';
}

function isGatewayTimeout(e: ImgapiError): boolean {
  if (e.statusCode === undefined) return /timed out|closed before/.test(e.message);
  return [502, 503, 504].includes(e.statusCode) && !e.restCode;
}

export interface UpdatesFromEnvOptions {
  env: NodeJS.ProcessEnv;
  channel: string;
  uploadFile?: boolean;
  sshDir?: string;
  retry?: RetryPolicy;
}

/** The importer as updates-imgadm was configured (§2.1), defaults as bits-upload.sh's (c.4). */
export async function updatesImporterFromEnv(o: UpdatesFromEnvOptions): Promise<UpdatesImporter> {
  const u = updatesEnv(o.env);
  let signer;
  try {
    signer = await updatesSigner(u, o.sshDir ?? sshDirOf(o.env));
  } catch (err) {
    if (err instanceof KeyError) throw new PublishError(`updates IMGAPI: ${err.message}`, { hint: 'set UPDATES_IMGADM_IDENTITY to an RSA private key file or its fingerprint' });
    throw err;
  }
  const retry = o.retry ?? DEFAULT_RETRY;
  let client: ImgapiAdminClient;
  try {
    client = new ImgapiAdminClient({
      url: u.url,
      user: u.user,
      signer,
      channel: o.channel,
      insecure: u.insecure,
      env: o.env,
      retry,
    });
  } catch (err) {
    throw new PublishError(`UPDATES_IMGADM_URL: ${(err as Error).message}`);
  }
  return new UpdatesImporter({ client, uploadFile: o.uploadFile, retry });
}
