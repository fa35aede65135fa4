/**
 * A directory of published images: `<stem>.imgmanifest` with the image file
 * beside it (`<stem>.zfs.gz|.zfs.bz2|.zfs.xz|.zfs`), as a build's outputs or
 * a bits directory lay them out.
 */
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileSuffix } from '../image/compression.js';
import { BuildError } from '../core/errors.js';
import { log } from '../core/log.js';
import { isUuid, type ImageManifest } from '../image/manifest/types.js';
import type { GetManifestOptions, ImageSource, OpenFileOptions } from './source.js';

interface Entry {
  manifest: ImageManifest;
  stem: string;
  /** Other manifest files in the directory claiming the same uuid. */
  others: string[];
}

export class DirectorySource implements ImageSource {
  private index?: Map<string, Entry>;
  constructor(readonly dir: string) {}

  get description(): string {
    return this.dir;
  }

  private async load(): Promise<Map<string, Entry>> {
    if (this.index) return this.index;
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      throw new BuildError(`image source ${this.dir} cannot be read: ${(err as Error).message}`);
    }
    const index = new Map<string, Entry>();
    for (const name of names.filter((n) => n.endsWith('.imgmanifest')).sort()) {
      const path = join(this.dir, name);
      try {
        const manifest = JSON.parse(await readFile(path, 'utf8')) as ImageManifest;
        // The uuid becomes a dataset name and a lock file name: a uuid, nothing else.
        if (!isUuid(manifest?.uuid)) throw new Error(manifest?.uuid === undefined ? 'no uuid' : `"uuid" ${JSON.stringify(manifest.uuid).slice(0, 80)} is not a uuid`);
        const had = index.get(manifest.uuid);
        if (had) had.others.push(name);
        else index.set(manifest.uuid, { manifest, stem: name.slice(0, -'.imgmanifest'.length), others: [] });
      } catch (err) {
        // Other manifests in a shared directory are not ours to judge.
        log.warn(`skipping ${path}: ${(err as Error).message}`);
      }
    }
    this.index = index;
    return index;
  }

  async getManifest(uuid: string, opts: GetManifestOptions = {}): Promise<ImageManifest> {
    if (!isUuid(uuid)) throw new BuildError(`image ${JSON.stringify(uuid)} is not an image uuid`);
    const entry = (await this.load()).get(uuid);
    if (!entry) throw new BuildError(`image ${uuid} not found in ${this.dir} (no *.imgmanifest with that uuid)`);
    if (entry.others.length) {
      throw new BuildError(`image ${uuid}: ${this.dir} has ${entry.others.length + 1} manifests with that uuid (${entry.stem}.imgmanifest, ${entry.others.join(', ')})`, {
        hint: 'which file is the image is ambiguous: remove the stale ones',
      });
    }
    const state = entry.manifest.state;
    if (opts.requireActive && state !== undefined && state !== 'active') {
      throw new BuildError(`image ${uuid} in ${this.dir} is not active (state ${String(state)})`);
    }
    return entry.manifest;
  }

  /** Path of the image file for `manifest`, chosen by its files[0].compression. */
  async filePath(manifest: ImageManifest): Promise<string> {
    const entry = (await this.load()).get(manifest.uuid);
    if (!entry) throw new BuildError(`image ${manifest.uuid} not found in ${this.dir}`);
    const compression = (manifest.files?.[0]?.compression ?? 'none');
    const path = join(this.dir, entry.stem + fileSuffix(compression));
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) {
      throw new BuildError(`image ${manifest.uuid}: file ${path} is missing (manifest says compression ${compression})`);
    }
    return path;
  }

  async openFile(manifest: ImageManifest, opts: OpenFileOptions = {}): Promise<Readable> {
    const stream = createReadStream(await this.filePath(manifest), { highWaterMark: 1024 * 1024 });
    if (opts.onProgress) {
      let bytes = 0;
      stream.on('data', (chunk) => opts.onProgress!((bytes += chunk.length)));
    }
    return stream;
  }
}
