/**
 * `buildimage init`: a starting build definition (buildimage.json) and
 * Jenkinsfile for a component repo, from templates/. Never replaces a file
 * unless told to (--force); writes nothing when it would have to.
 */
import { stat } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import { UsageError } from '../core/errors.js';
import { writeAtomic } from '../core/files.js';
import { fill, readTemplate } from '../core/templates.js';
import { gitRemote } from '../host/git.js';
import { isUuid } from '../image/manifest/types.js';
import { DEFAULT_BASE, DEFAULT_IMAGE_VER, DEFAULT_PI, type DEFINITION_TEMPLATES, type JENKINSFILE_KINDS } from '../settings/table.js';

export { DEFAULT_BASE };
export type DefinitionTemplate = (typeof DEFINITION_TEMPLATES)[number];
export type JenkinsfileKind = (typeof JENKINSFILE_KINDS)[number];

export interface InitResult {
  ok: true;
  dir: string;
  /** Files written, absolute. */
  written: string[];
  /** Files that already existed and were replaced (--force). */
  overwritten: string[];
  /** The commands to run next, in order. */
  next: string[];
}

export interface JenkinsValues {
  name: string;
  imageVer: string;
  pi: string;
  /** The build definition's path, relative to the repo root. */
  config: string;
}

/** The values Jenkinsfile.example and its siblings at the top of this repo are rendered with. */
export const EXAMPLE_VALUES: JenkinsValues = { name: 'myservice', imageVer: DEFAULT_IMAGE_VER, pi: DEFAULT_PI, config: 'buildimage.json' };

export function renderJenkinsfile(kind: Exclude<JenkinsfileKind, 'none'>, v: JenkinsValues): string {
  return fill(readTemplate(`jenkins/${kind}.Jenkinsfile`), { NAME: v.name, IMAGE_VER: v.imageVer, PI: v.pi, CONFIG: v.config });
}

export function renderDefinition(
  template: DefinitionTemplate,
  v: { name: string; description: string; base: string; sourceRepo?: string },
): string {
  const text = fill(readTemplate(`definitions/${template}.json`), {
    NAME: v.name,
    DESCRIPTION: v.description,
    BASE: v.base,
    BASE_NOTE:
      v.base === DEFAULT_BASE
        ? 'Base image: triton-origin-x86_64-21.4.0 (pkgsrc 2021Q4); the Jenkins agent\'s image_ver must match it (21.4.0).'
        : 'Base (origin) image uuid; the Jenkins agent\'s image_ver must match its pkgsrc release.',
    SOURCE_REPO: v.sourceRepo ?? '',
  });
  // Placeholders left empty (no git remote): drop the key rather than write "".
  const obj = JSON.parse(text) as Record<string, unknown>;
  for (const [k, val] of Object.entries(obj)) if (val === '') delete obj[k];
  return JSON.stringify(obj, null, 2) + '\n';
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export interface InitOptions {
  dir: string;
  name?: string;
  description?: string;
  base?: string;
  template: DefinitionTemplate;
  jenkinsfile: JenkinsfileKind;
  imageVer: string;
  pi: string;
  force: boolean;
  cwd?: string;
}

/** eng's NAME: the repo name without the sdc-/triton-/manta- prefix (sdc-imgapi → imgapi). */
export function defaultName(dir: string): string {
  return basename(resolve(dir)).replace(/^(sdc|triton|manta)-/, '');
}

export async function init(o: InitOptions): Promise<InitResult> {
  const cwd = o.cwd ?? process.cwd();
  const dir = resolve(cwd, o.dir);
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new UsageError(`${o.dir} is not a directory`, 'create the repo first, or pass its path');
  const name = o.name ?? defaultName(dir);
  if (!NAME_RE.test(name)) throw new UsageError(`--name must be an image name (letters, digits, . _ -), got ${JSON.stringify(name)}`);
  const base = (o.base ?? DEFAULT_BASE).toLowerCase();
  if (!isUuid(base)) throw new UsageError(`--base must be an image uuid, got ${JSON.stringify(o.base)}`);

  const sourceRepo = await gitRemote(dir);
  const files: Array<[string, string]> = [
    [join(dir, 'buildimage.json'), renderDefinition(o.template, { name, description: o.description ?? `${name} image`, base, sourceRepo })],
  ];
  if (o.jenkinsfile !== 'none') {
    files.push([join(dir, 'Jenkinsfile'), renderJenkinsfile(o.jenkinsfile, { name, imageVer: o.imageVer, pi: o.pi, config: 'buildimage.json' })]);
  }
  const existing: string[] = [];
  for (const [path] of files) if (await stat(path).catch(() => undefined)) existing.push(path);
  if (existing.length && !o.force) {
    const names = existing.map((p) => relative(cwd, p) || p).join(', ');
    throw new UsageError(`${names} already exist${existing.length === 1 ? 's' : ''}; nothing written`, 'pass --force to replace, or move them away');
  }
  for (const [path, text] of files) await writeAtomic(path, text);
  // No proto/ here: the Jenkinsfiles' re-clean (`git clean -fdx`) would
  // delete an untracked one; they hand buildimage the release tarball made
  // each run instead, and a local try makes its own proto dir.
  const written = files.map(([p]) => p);

  const config = relative(cwd, join(dir, 'buildimage.json'));
  const state = relative(cwd, join(dir, '.buildimage', 'state.json'));
  const out = relative(cwd, join(dir, 'bits', name));
  return {
    ok: true,
    dir,
    written,
    overwritten: existing,
    next: [
      `buildimage doctor -i ${base}`,
      `buildimage prepare --config ${config} --image-version "dev-$(date -u +%Y%m%dT%H%M%SZ)" --output-dir ${out} --state ${state}`,
      `buildimage assemble --state ${state}`,
      `buildimage pkgadd --state ${state}`,
      `buildimage seal --state ${state}`,
      `buildimage clean --state ${state} --missing-ok`,
    ],
  };
}
