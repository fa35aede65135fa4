/**
 * `buildimage init`: a starting build definition (buildimage.json) and
 * Jenkinsfile for a component repo, from templates/. Never replaces a file
 * unless told to (--force); writes nothing when it would have to. Adds
 * what a local build leaves in the repo (.buildimage/, bits/) to its
 * .gitignore. Prints the commands to try it, with paths as seen from where
 * it ran.
 */
import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { oneLine, UsageError } from '../core/errors.js';
import { writeAtomic } from '../core/files.js';
import { DEFINITION_SCHEMA_FILE, packageRoot } from '../core/package.js';
import { fill, readTemplate } from '../core/templates.js';
import { run } from '../host/exec.js';
import { gitRemote } from '../host/git.js';
import { isSmartOS, platform } from '../host/platform.js';
import { isUuid } from '../image/manifest/types.js';
import { DEFAULT_BASE, DEFAULT_IMAGE_VER, DEFAULT_PI, DEFAULT_STATE_PATH, SETTINGS, type DEFINITION_TEMPLATES, type JENKINSFILE_KINDS } from '../settings/table.js';

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
  /** The repo's .gitignore: the entries added (none when it had them), or why it was left alone. */
  gitignore: { path: string; added: string[]; skipped?: string };
  /** What to edit first (buildimage.json, the proto dir), relative to where init ran. */
  edit: string[];
  /** The commands to run next, in order, paths relative to where init ran. */
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
  // First, for editors: the JSON Schema of the file, as shipped with this buildimage.
  const obj = { $schema: pathToFileURL(join(packageRoot(), DEFINITION_SCHEMA_FILE)).href, ...(JSON.parse(text) as Record<string, unknown>) };
  for (const [k, val] of Object.entries(obj)) if (val === '') delete (obj as Record<string, unknown>)[k];
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
  env?: NodeJS.ProcessEnv;
}

/** What a local build leaves in the repo: the state (DEFAULT_STATE_PATH's directory) and the outputs. */
export const GITIGNORE_ENTRIES = [`${DEFAULT_STATE_PATH.split('/')[0]}/`, 'bits/'];
const GITIGNORE_MAX_BYTES = 1024 * 1024;

/** The entries a .gitignore lacks; `x`, `x/`, `/x` and `/x/` all ignore the top-level directory x. */
export function missingIgnores(text: string, entries: readonly string[] = GITIGNORE_ENTRIES): string[] {
  const bare = (l: string) => l.trim().replace(/^\//, '').replace(/\/+$/, '');
  const have = new Set(text.split('\n').map(bare).filter((l) => l && !l.startsWith('#')));
  return entries.filter((e) => !have.has(bare(e)));
}

/**
 * Appends the missing entries to `<dir>/.gitignore`, creating it if need be.
 * init may run as root in someone's checkout: the file is opened without
 * following a link (a .gitignore pointing out of the repo is left alone),
 * only as a regular file with no other hard link, and checked and written
 * through that one descriptor.
 */
export async function addToGitignore(dir: string): Promise<InitResult['gitignore']> {
  const path = join(dir, '.gitignore');
  const flags = constants.O_RDWR | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW | constants.O_NONBLOCK;
  const fh = await open(path, flags, 0o644).catch((err: NodeJS.ErrnoException) => err);
  if (fh instanceof Error) return { path, added: [], skipped: fh.code === 'ELOOP' ? 'it is a symlink' : oneLine(fh) };
  try {
    const st = await fh.stat();
    const why = !st.isFile() ? 'it is not a regular file' : st.nlink > 1 ? 'it has other hard links' : st.size > GITIGNORE_MAX_BYTES ? 'it is larger than 1 MiB' : undefined;
    if (why) return { path, added: [], skipped: why };
    const text = st.size ? await fh.readFile('utf8') : '';
    const added = missingIgnores(text);
    if (added.length) {
      await fh.write(`${text && !text.endsWith('\n') ? '\n' : ''}# buildimage: a local build's state and outputs\n${added.join('\n')}\n`);
    }
    return { path, added };
  } finally {
    await fh.close();
  }
}

/** A word for a POSIX shell: as is when it is plain, else in single quotes. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

/**
 * The export the printed commands need when no dataset root would be
 * found (not SmartOS, BUILDIMAGE_DATASET_ROOT unset): a dataset on this
 * machine's first pool, which doctor then checks (and says how to create).
 */
async function datasetRootStep(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const name = SETTINGS['dataset-root'].env;
  if (env[name]?.trim() || isSmartOS()) return undefined;
  const pools = await run(platform().commands.zfs, ['list', '-H', '-o', 'name', '-d', '0'], { timeoutMs: 30_000 }).then(
    (r) => r.stdout.split('\n').filter(Boolean),
    () => [],
  );
  return `export ${name}=${shellWord(`${pools[0] ?? 'POOL'}/buildimage`)}`;
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
  if (!isUuid(base)) throw new UsageError(`-i must be an image uuid, got ${JSON.stringify(o.base)}`);

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
  const gitignore = await addToGitignore(dir);

  // As seen from where init ran, quoted for the shell the commands are pasted into.
  const here = (...parts: string[]) => relative(cwd, join(dir, ...parts)) || '.';
  const config = shellWord(here('buildimage.json'));
  const state = shellWord(here(DEFAULT_STATE_PATH));
  const out = shellWord(here('bits', name));
  const rootStep = await datasetRootStep(o.env ?? process.env);
  return {
    ok: true,
    dir,
    written,
    overwritten: existing,
    gitignore,
    edit: [here('buildimage.json'), `${here('proto')}/`],
    next: [
      ...(rootStep ? [rootStep] : []),
      `buildimage doctor -i ${base} --output-dir ${out}`,
      `buildimage prepare --config ${config} --image-version "dev-$(date -u +%Y%m%dT%H%M%SZ)" --output-dir ${out} --state ${state}`,
      `buildimage assemble --state ${state}`,
      `buildimage pkgadd --state ${state}`,
      `buildimage seal --state ${state}`,
      `buildimage clean --state ${state} --missing-ok`,
    ],
  };
}
