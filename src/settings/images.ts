/**
 * A definition with several images (`"images"` in buildimage.json): which
 * images a command works on (--only), each one's settings (its own keys
 * over the shared ones, then the command line over both), each one's build
 * definition, and the checks that no two of them write the same files.
 */
import { resolve } from 'node:path';
import { UsageError } from '../core/errors.js';
import { buildDefinition, type BuildDefinition } from './definition.js';
import { lockfilePath } from './lockfile.js';
import { definitionFileOf, imageDefinitionFile, resolveSettings, type DefinitionFile, type Resolved } from './resolve.js';
import { LOGGING_SETTINGS, type CommandId } from './table.js';

/** The commands that read a build definition. */
export type DefiningCommand = Extract<CommandId, 'build' | 'prepare' | 'plan'>;

export interface ImageSettings<C extends DefiningCommand> {
  /** Undefined for a definition of one image (no `"images"`). */
  name?: string;
  settings: Resolved<C>;
}

export interface SelectedImages<C extends DefiningCommand> {
  /** The definition lists `"images"`. */
  multi: boolean;
  file?: DefinitionFile;
  images: ImageSettings<C>[];
}

/** Names in a message: the first few, bounded, then how many more. */
export function nameList(names: readonly string[], max = 12): string {
  return `${names.slice(0, max).join(', ')}${names.length > max ? ` and ${names.length - max} more` : ''}`;
}

/**
 * The images a command works on: every image of the definition, in its
 * order, or those --only names; each with its settings resolved. A
 * definition without `"images"` is one image, as it always was.
 */
export async function selectImages<C extends DefiningCommand>(command: C, flags: Record<string, unknown>, top: Resolved<C>, env?: NodeJS.ProcessEnv): Promise<SelectedImages<C>> {
  const file = definitionFileOf(top);
  const only = (top as { only?: string[] }).only;
  if (!file?.images) {
    // One image: --only may name it as plan does (its manifest's name), so one Jenkinsfile serves both kinds.
    const own = (top as { manifest?: Record<string, unknown> }).manifest?.name;
    if (only?.length && !only.every((n) => n === own)) {
      throw new UsageError(
        `--only ${only.find((n) => n !== own)}: ${file ? `--config ${file.path} has no "images" list` : 'there is no definition file with an "images" list (--config)'}`,
        `--only picks images of a definition with "images" (or names a one-image definition's manifest name${typeof own === 'string' ? `, ${JSON.stringify(own.slice(0, 64))}` : ''})`,
      );
    }
    return { multi: false, file, images: [{ settings: top }] };
  }
  const known = file.images.map((i) => i.name);
  const wanted = new Set(only?.length ? only : known);
  for (const n of wanted) {
    if (!known.includes(n)) throw new UsageError(`--only ${n}: --config ${file.path} has no such image`, `its images: ${nameList(known)}`);
  }
  if (command === 'prepare' && wanted.size !== 1) {
    throw new UsageError(`--config ${file.path} lists ${known.length} images: prepare builds one, named with --only`, `its images: ${nameList(known)}`);
  }
  const logging = Object.fromEntries(LOGGING_SETTINGS.map((id) => [id, (top as Record<string, unknown>)[id]]));
  const images: ImageSettings<C>[] = [];
  for (const name of known.filter((n) => wanted.has(n))) {
    const own = imageDefinitionFile(file, name);
    let settings: Resolved<C>;
    try {
      settings = { ...(await resolveSettings(command, flags, { file: own, skip: LOGGING_SETTINGS, env })), ...logging };
    } catch (err) {
      throw inImage(name, err);
    }
    // Each image its own lockfile unless one was named: buildimage.<name>.lock.json beside the definition.
    const s = settings as Record<string, unknown>;
    if ('lock-file' in s && s['lock-file'] === undefined) s['lock-file'] = lockfilePath(undefined, file.path, name);
    images.push({ name, settings });
  }
  return { multi: true, file, images };
}

/** A usage error of one image's definition, naming the image. */
export function inImage(name: string, err: unknown): unknown {
  if (!(err instanceof UsageError)) return err;
  return new UsageError(`image ${name}: ${err.message}`, err.hint);
}

export interface DefinedImage {
  name?: string;
  def: BuildDefinition;
  /** build/prepare's --lock-file, resolved for this image. */
  lockFile?: string;
}

/** Each selected image's build definition (machine checks included), then the check that their outputs differ. */
export async function defineImages(sel: SelectedImages<'build'> | SelectedImages<'prepare'>): Promise<DefinedImage[]> {
  const out: DefinedImage[] = [];
  for (const { name, settings } of sel.images) {
    try {
      out.push({ name, def: await buildDefinition(settings), lockFile: settings['lock-file'] });
    } catch (err) {
      throw name === undefined ? err : inImage(name, err);
    }
  }
  checkDistinct(
    out.map((d) => ({ name: d.name ?? '', path: resolve(d.def.outputDir, `${d.def.prefix}-${String(d.def.manifest.version)}`) })),
    'write the same output files',
    'give each its own "prefix" (or manifest name) or "output-dir"',
  );
  return out;
}

/** Refuses two images with the same `path` (an output stem, a state file, a lockfile). */
export function checkDistinct(items: Array<{ name: string; path: string }>, what: string, hint: string): void {
  const seen = new Map<string, string>();
  for (const { name, path } of items) {
    const other = seen.get(path);
    if (other !== undefined) throw new UsageError(`images ${other} and ${name} would ${what} (${path.length > 120 ? `${path.slice(0, 120)}…` : path})`, hint);
    seen.set(path, name);
  }
}
