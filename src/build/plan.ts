/**
 * `buildimage plan`: the images a definition builds (after --only) and
 * what each needs, for a Jenkinsfile that fans them out to agents. It
 * reads only the definition and this machine (is the base installed, how
 * big are the proto and the base); it creates nothing, asks no source, and
 * does not require the protos to exist yet (they are often made on the
 * agent that builds the image).
 */
import { opendir, lstat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Layout } from '../core/layout.js';
import { Zfs } from '../host/zfs.js';
import { defaultImgadmDir } from '../base/known.js';
import { installedWithManifest } from '../base/install.js';
import { required } from '../settings/resolve.js';
import { checkDistinct, inImage, type SelectedImages } from '../settings/images.js';
import { parsePrefix, label } from '../settings/table.js';
import { UsageError } from '../core/errors.js';

export interface PlanImage {
  name: string;
  base: {
    uuid: string;
    /** Known when the base is installed here with its manifest. */
    name?: string;
    version?: string;
    installed: boolean;
    /** Installed: the bytes its dataset references (`zfs get referenced`). */
    bytes?: number;
  };
  packages: string[];
  /** -d: a proto directory or archive (undefined: none given yet). */
  proto?: string;
  /** --add archives, in order. */
  add: Array<{ path: string; dir?: string }>;
  prefix: string;
  /** --image-version or the manifest's; undefined when neither is given yet. */
  version?: string;
  outputDir: string;
  /** PREFIX-VERSION (VERSION literally when the version is not known yet): every output file's name starts with it. */
  stem: string;
  /** Bytes of the proto tree (or archive file) and the --add archives, when they exist here. */
  protoBytes?: number;
  /** protoBytes + base.bytes when both are known: what the image root will hold before packages. */
  estimatedBytes?: number;
}

export interface PlanResult {
  ok: true;
  config?: string;
  /** How estimatedBytes is made. */
  estimate: string;
  images: PlanImage[];
}

export const ESTIMATE =
  'the base image\'s referenced bytes (when installed here) + the proto\'s bytes (a directory\'s files, an archive\'s compressed size) + the --add archives\' sizes; packages not counted';

/** Entries walked in one proto at most: beyond, the size is unknown rather than slow. */
const MAX_PROTO_ENTRIES = 200_000;

/** Bytes of regular files under `dir` (links not followed), or undefined when it is too big to count. */
async function treeBytes(dir: string): Promise<number | undefined> {
  let total = 0;
  let entries = 0;
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop()!;
    for await (const e of await opendir(d)) {
      if (++entries > MAX_PROTO_ENTRIES) return undefined;
      const p = join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) total += (await lstat(p)).size;
    }
  }
  return total;
}

/** A path's bytes: a directory's files or a file's size; undefined when it is not there (yet). */
async function pathBytes(path: string): Promise<number | undefined> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return undefined;
  if (st.isFile()) return st.size;
  if (st.isDirectory()) return treeBytes(path).catch(() => undefined);
  return undefined;
}

export async function planImages(sel: SelectedImages<'plan'>, zfs = new Zfs()): Promise<PlanResult> {
  const images: PlanImage[] = [];
  for (const { name, settings: s } of sel.images) {
    try {
      const uuid = required('image', s.image, s.config);
      const manifest = s.manifest ?? {};
      const version = s['image-version'] ?? (typeof manifest.version === 'string' ? manifest.version : undefined);
      const manifestName = typeof manifest.name === 'string' ? manifest.name : undefined;
      let prefix = s.prefix;
      if (prefix === undefined) {
        if (manifestName === undefined) throw new UsageError(`missing the manifest's "name" (${label('manifest')}): it makes the output file prefix NAME-zfs`, `set "name" in "manifest", or pass ${label('prefix')}`);
        prefix = parsePrefix(`${manifestName}-zfs`, label('prefix'));
      }
      const base: PlanImage['base'] = { uuid, installed: false };
      if (s['dataset-root']) {
        const layout = new Layout(s['dataset-root'], s['work-dir']);
        const known = await installedWithManifest({ zfs, layout, imgadmDir: defaultImgadmDir() }, uuid).catch(() => undefined);
        if (known) {
          base.installed = true;
          base.name = known.manifest.name;
          base.version = known.manifest.version;
          const ref = Number(await zfs.getOne(layout.imageDataset(uuid), 'referenced').catch(() => NaN));
          if (Number.isFinite(ref)) base.bytes = ref;
        }
      }
      const proto = s.dir === undefined ? undefined : resolve(s.dir);
      const add = (s.add ?? []).map((a) => ({ path: resolve(a.path), ...(a.dir !== undefined ? { dir: a.dir } : {}) }));
      const parts = await Promise.all([...(proto ? [proto] : []), ...add.map((a) => a.path)].map(pathBytes));
      const protoBytes = parts.length && parts.every((b) => b !== undefined) ? parts.reduce((a: number, b) => a + b, 0) : undefined;
      images.push({
        name: name ?? manifestName ?? prefix,
        base,
        packages: s.packages,
        ...(proto ? { proto } : {}),
        add,
        prefix,
        ...(version !== undefined ? { version } : {}),
        outputDir: s['output-dir'],
        stem: `${prefix}-${version ?? 'VERSION'}`,
        ...(protoBytes !== undefined ? { protoBytes } : {}),
        ...(protoBytes !== undefined && base.bytes !== undefined ? { estimatedBytes: protoBytes + base.bytes } : {}),
      });
    } catch (err) {
      throw name === undefined ? err : inImage(name, err);
    }
  }
  checkDistinct(
    images.map((i) => ({ name: i.name, path: resolve(i.outputDir, i.stem) })),
    'write the same output files',
    'give each its own "prefix" (or manifest name) or "output-dir"',
  );
  return { ok: true, ...(sel.file ? { config: resolve(sel.file.path) } : {}), estimate: ESTIMATE, images };
}
