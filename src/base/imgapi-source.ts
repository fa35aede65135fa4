/**
 * Base images from an IMGAPI server (imgapi.md §5.1, §5.4): manifests by
 * GetImage in the source's channel, files by GetImageFile. The file stream
 * survives dropped and stalled connections by asking again with
 * `Range: bytes=N-` when the server allows ranges, so the consumer (which
 * hashes as the bytes flow) sees every byte exactly once, in order.
 */
import { Readable } from 'node:stream';
import { BuildError } from '../core/errors.js';
import { abortReason, interruptSignal } from '../core/interrupt.js';
import { log } from '../core/log.js';
import type { ImageManifest } from '../image/manifest/types.js';
import type { GetManifestOptions, ImageSource, OpenFileOptions } from './source.js';
import { describeNetworkError } from '../http/network-errors.js';
import { ImgapiClient, ImgapiError, type ImageFileResponse, type ImgapiClientOptions } from '../imgapi/client.js';

export interface ImgapiSourceOptions extends ImgapiClientOptions {
  /** Use this client instead of making one from the options. */
  client?: ImgapiClient;
  /** No body bytes for this long (while we want them) counts as a dropped connection. Default 60 s. */
  stallTimeoutMs?: number;
  /** Reconnects in a row that bring no new bytes before giving up. Default 5. */
  resumeRetries?: number;
  /** Reconnects per file, in all. Default 100. */
  maxResumes?: number;
  /** First wait before a reconnect, doubled per fruitless one up to resumeMaxDelayMs. Default 1 s. */
  resumeDelayMs?: number;
  resumeMaxDelayMs?: number;
}

export const SOURCE_DEFAULTS = {
  stallTimeoutMs: 60_000,
  resumeRetries: 5,
  maxResumes: 100,
  resumeDelayMs: 1_000,
  resumeMaxDelayMs: 15_000,
} as const;


type ResumeSettings = Required<Pick<ImgapiSourceOptions, keyof typeof SOURCE_DEFAULTS>>;

export class ImgapiSource implements ImageSource {
  readonly client: ImgapiClient;
  private readonly settings: ResumeSettings;

  constructor(opts: ImgapiSourceOptions) {
    this.client = opts.client ?? new ImgapiClient(opts);
    this.settings = {
      stallTimeoutMs: opts.stallTimeoutMs ?? SOURCE_DEFAULTS.stallTimeoutMs,
      resumeRetries: opts.resumeRetries ?? SOURCE_DEFAULTS.resumeRetries,
      maxResumes: opts.maxResumes ?? SOURCE_DEFAULTS.maxResumes,
      resumeDelayMs: opts.resumeDelayMs ?? SOURCE_DEFAULTS.resumeDelayMs,
      resumeMaxDelayMs: opts.resumeMaxDelayMs ?? SOURCE_DEFAULTS.resumeMaxDelayMs,
    };
  }

  get description(): string {
    return this.client.description;
  }

  async getManifest(uuid: string, opts: GetManifestOptions = {}): Promise<ImageManifest> {
    const m = await this.client.getImage(uuid);
    if (opts.requireActive && m.state !== 'active') {
      throw new BuildError(`IMGAPI ${this.client.url}: image ${uuid} (${m.name}@${m.version}) is not active (state ${String(m.state)})`, {
        hint: 'only active images can be imported as a base image',
      });
    }
    return m;
  }

  async openFile(manifest: ImageManifest, opts: OpenFileOptions = {}): Promise<Readable> {
    const file = manifest.files?.[0];
    if (!file || !Number.isSafeInteger(file.size) || file.size < 0) {
      throw new BuildError(`image ${manifest.uuid}: its manifest has no files[0].size, so its file cannot be fetched from ${this.client.url}`);
    }
    const dl = new ResumingDownload(this.client, manifest.uuid, file.size, this.settings, opts.onProgress);
    await dl.start();
    return dl;
  }
}

/**
 * The file as one Readable over as many HTTP responses as it takes. Bytes
 * are counted as they are pushed; a reconnect asks for exactly the next byte
 * and checks the server's Content-Range says so, and a response generation
 * counter keeps a dead response from pushing anything after it was dropped.
 */
class ResumingDownload extends Readable {
  private emitted = 0;
  private gen = 0;
  private current?: ImageFileResponse;
  private wanted = false;
  private acceptRanges = false;
  private etag?: string;
  private stallTimer?: NodeJS.Timeout;
  private fruitless = 0;
  private reconnects = 0;
  private emittedAtConnect = 0;
  private readonly aborter = new AbortController();
  private readonly onInterrupt = (): void => {
    this.destroy(abortReason(interruptSignal(), new Error('interrupted')));
  };

  constructor(
    private readonly client: ImgapiClient,
    private readonly uuid: string,
    private readonly size: number,
    private readonly settings: ResumeSettings,
    private readonly onProgress?: (bytes: number) => void,
  ) {
    super({ highWaterMark: 1024 * 1024 });
  }

  private get what(): string {
    return `IMGAPI ${this.client.url}: image ${this.uuid} file`;
  }

  /** The first request; its errors (404, bad Content-Length, ...) reject openFile itself. */
  async start(): Promise<void> {
    const res = await this.client.getImageFileStream(this.uuid, { signal: this.aborter.signal });
    this.acceptRanges = res.acceptRanges;
    this.etag = res.etag;
    this.attach(res);
    interruptSignal().addEventListener('abort', this.onInterrupt, { once: true });
  }

  /** Checks a response fits where we are, then lets its bytes flow into us. */
  private attach(res: ImageFileResponse): void {
    const offset = this.emitted;
    const fail = (why: string): never => {
      res.stream.destroy();
      throw new BuildError(`${this.what}: ${why}`);
    };
    if (res.contentLength === undefined) fail('the server sent no Content-Length');
    if (offset === 0) {
      if (res.statusCode !== 200 && !(res.statusCode === 206 && res.range?.start === 0 && res.range.total === this.size)) {
        fail(`unexpected HTTP ${res.statusCode} for the whole file`);
      }
      if (res.contentLength !== this.size) fail(`the server says Content-Length ${res.contentLength}, the manifest says files[0].size ${this.size}`);
    } else {
      if (res.statusCode !== 206) fail(`asked to resume at byte ${offset}, the server answered HTTP ${res.statusCode} (the whole file; it may have changed)`);
      const r = res.range;
      if (!r || r.start !== offset || r.total !== this.size || res.contentLength !== this.size - offset) {
        fail(`asked for bytes ${offset}-, the server sent ${r ? `${r.start}-${r.end}/${r.total}` : 'no Content-Range'} (${res.contentLength} bytes)`);
      }
    }
    if (res.acceptRanges) this.acceptRanges = true;
    const gen = ++this.gen;
    this.current = res;
    this.emittedAtConnect = offset;
    const s = res.stream;
    s.on('data', (chunk: Buffer) => this.onData(gen, chunk));
    s.on('end', () => this.onEnd(gen));
    s.on('error', (err: Error) => this.onDrop(gen, describeNetworkError(err).text));
    s.on('close', () => this.onDrop(gen, 'the connection closed'));
    if (this.wanted) this.flow();
    else s.pause();
  }

  _read(): void {
    this.wanted = true;
    this.flow();
  }

  private flow(): void {
    if (!this.current) return;
    this.current.stream.resume();
    this.armStall();
  }

  private armStall(): void {
    clearTimeout(this.stallTimer);
    const gen = this.gen;
    this.stallTimer = setTimeout(() => this.onDrop(gen, `no data for ${(this.settings.stallTimeoutMs / 1000).toFixed(1)}s`), this.settings.stallTimeoutMs);
  }

  private onData(gen: number, chunk: Buffer): void {
    if (gen !== this.gen || this.destroyed) return;
    if (this.emitted + chunk.length > this.size) {
      this.destroy(new BuildError(`${this.what}: the server sent more than files[0].size (${this.size}) bytes`));
      return;
    }
    this.emitted += chunk.length;
    this.onProgress?.(this.emitted);
    if (this.push(chunk)) {
      this.armStall();
    } else {
      // Downstream is full: stop reading and stop the stall clock until it asks again.
      this.wanted = false;
      clearTimeout(this.stallTimer);
      this.current?.stream.pause();
    }
  }

  private onEnd(gen: number): void {
    if (gen !== this.gen || this.destroyed) return;
    if (this.emitted === this.size) {
      this.gen++;
      this.current = undefined;
      clearTimeout(this.stallTimer);
      interruptSignal().removeEventListener('abort', this.onInterrupt);
      this.push(null);
      return;
    }
    this.onDrop(gen, 'the response ended early');
  }

  /** A connection went away (error, early end, stall): resume, restart or fail. */
  private onDrop(gen: number, reason: string): void {
    if (gen !== this.gen || this.destroyed) return;
    this.gen++;
    clearTimeout(this.stallTimer);
    this.current?.stream.destroy();
    this.current = undefined;
    if (this.emitted === this.size) {
      // Everything arrived; only the goodbye was lost.
      this.push(null);
      return;
    }
    const at = `after ${this.emitted} of ${this.size} bytes`;
    if (this.emitted > 0 && !this.acceptRanges) {
      this.destroy(
        // Retryable as a whole: the importer starts the image over.
        new ImgapiError(`${this.what}: ${reason} ${at}, and the server cannot resume (no "Accept-Ranges: bytes")`, {
          retryable: true,
          hint: 'run the build again',
        }),
      );
      return;
    }
    this.fruitless = this.emitted > this.emittedAtConnect ? 0 : this.fruitless + 1;
    this.reconnects++;
    if (this.fruitless > this.settings.resumeRetries || this.reconnects > this.settings.maxResumes) {
      this.destroy(new BuildError(`${this.what}: ${reason} ${at}; gave up after ${this.reconnects - 1} reconnects`));
      return;
    }
    const delay = Math.min(this.settings.resumeDelayMs * 2 ** Math.max(0, this.fruitless - 1), this.settings.resumeMaxDelayMs);
    log.warn(`${this.what}: ${reason} ${at}; ${this.emitted ? `resuming at byte ${this.emitted}` : 'starting again'} in ${(delay / 1000).toFixed(1)}s`);
    const next = this.gen;
    this.stallTimer = setTimeout(() => void this.reconnect(next), delay);
  }

  private async reconnect(gen: number): Promise<void> {
    if (gen !== this.gen || this.destroyed) return;
    try {
      const res = await this.client.getImageFileStream(this.uuid, {
        offset: this.emitted,
        ifRange: this.emitted ? this.etag : undefined,
        signal: this.aborter.signal,
      });
      if (gen !== this.gen || this.destroyed) {
        res.stream.destroy();
        return;
      }
      if (this.emitted === 0) {
        this.acceptRanges = res.acceptRanges;
        this.etag = res.etag;
      }
      this.attach(res);
    } catch (err) {
      if (!this.destroyed) this.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  }

  _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.gen++;
    clearTimeout(this.stallTimer);
    this.aborter.abort(err ?? new Error('download closed'));
    this.current?.stream.destroy();
    this.current = undefined;
    interruptSignal().removeEventListener('abort', this.onInterrupt);
    cb(err);
  }
}
