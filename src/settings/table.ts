/**
 * Every setting buildimage takes, defined once: its flag, short flag,
 * environment variable, default, parser, key in the build definition file
 * (buildimage.json), help, and the commands that take it. The oclif flags
 * (cli/flags.ts), the definition file's schema and the build definition
 * (definition.ts) and the README's settings table (scripts/render-docs.ts)
 * are all made from it. Where a value comes from: the command line, else
 * the definition file, else the environment, else the default.
 *
 * A parser turns the text into the value and throws a UsageError naming the
 * flag as the user wrote it (`-i`, `--timeout`); a check (build definition
 * only) looks at the machine: does the directory exist.
 */
import { lstatSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { DEFAULT_KEEP_DAYS, MAX_KEEP_DAYS } from '../base/cache.js';
import { DEFAULT_SOURCE, isUrl } from '../base/open.js';
import { UsageError } from '../core/errors.js';
import { recordedUrl } from '../core/redact.js';
import { delegatedDataset, isSmartOS } from '../host/platform.js';
import { assertDatasetName } from '../host/zfs.js';
import { protoDirProblem } from '../host/copy.js';
import { COMPRESSIONS } from '../image/compression.js';
import { archiveProblem } from '../image/tar.js';
import { parseAddArchive, type AddArchive } from '../image/extract.js';
import { STREAM_STALL_MS } from '../image/streams.js';
import { parseManifestObject } from '../image/manifest/input.js';
import { LIMITS } from '../image/manifest/validate.js';
import { isPlatformStamp, isUuid } from '../image/manifest/types.js';
import { parsePackageList } from '../pkgsrc/names.js';
import { parseInputJson, readInputFile } from './input-file.js';
import { ScriptConfigSchema, ScriptSchema, checkScripts, parseScriptArg, scriptConfigToText } from './scripts.js';
import { checkHookCount, hookName, hookTexts, HooksConfigSchema, HookSchema, parseHookArg, type Hook } from './hooks.js';

export const COMMANDS = ['build', 'prepare', 'assemble', 'pkgadd', 'seal', 'clean', 'publish', 'doctor', 'init', 'verify', 'diff', 'lock', 'plan', 'images', 'prune'] as const;
export type CommandId = (typeof COMMANDS)[number];

/** In buildimage.json: the JSON value's schema, and how it becomes the text a flag would give. */
export interface ConfigKey<V = never> {
  readonly schema: z.ZodTypeAny;
  /** `dir` is the file's directory: relative paths in the file are relative to it. A list (a `multiple` setting) gives one text per value. */
  toText(value: V, dir: string): string | string[];
}

interface Common {
  /** The long flag, when it is not the table key. */
  readonly flag?: string;
  /** Older long names the flag still answers to. */
  readonly aliases?: readonly string[];
  readonly char?: string;
  /** Read when neither the command line nor the definition file gives the setting. */
  readonly env?: string;
  readonly help: string;
  readonly commands: readonly CommandId[];
  /** A key of buildimage.json (the table key). */
  readonly config?: ConfigKey;
  /** Its key in the build definition (the state file's "definition"), and the stored value's schema. */
  readonly field?: string;
  readonly stored?: z.ZodTypeAny;
  /** Commands where the default, help or environment differs; `null` = none there. */
  readonly per?: Partial<Record<CommandId, { readonly default?: string | null; readonly help?: string; readonly env?: null }>>;
  /** What it is, for "missing -i (the base image uuid)", and the value the hint shows. */
  readonly required?: { readonly what: string; readonly example: string };
}

export interface StringSetting<T = unknown> extends Common {
  readonly type: 'string';
  readonly options?: readonly string[];
  /** The flag may be given more than once: each text is parsed (into a list) and the lists are joined in order. */
  readonly multiple?: true;
  /** Parsed like given text. A function is asked at resolution and may find nothing. */
  readonly default?: string | (() => Promise<string | undefined>);
  /** How help shows a default that is computed or implied. */
  readonly shownDefault?: string;
  // Method syntax: a setting's own value type stands in for T (bivariant parameters).
  parse(text: string, label: string): T;
  /** Build definition only: what the machine must have (an existing directory); may normalize. */
  check?(value: T, label: string): Promise<T>;
  /** With a value in the definition file and on the command line: how the two combine (else the command line wins). */
  merge?(fromFile: T, fromCommandLine: T): T;
  /**
   * How the value is written where others read it (the state file,
   * build-info.json): without credentials. The value itself is used only in
   * the process that was given it.
   */
  record?(value: T): T;
}

export interface BooleanSetting extends Common {
  readonly type: 'boolean';
  readonly default?: false;
}

export type Setting = StringSetting | BooleanSetting;

const text = (s: string): string => s;

/** buildimage.json's `"add"`: `"DIR=ARCHIVE"` strings, or `{ "archive": ..., "dir": ... }`. */
const AddObject = z.object({ archive: z.string(), dir: z.string().optional() }).strict();
type AddConfig = string | z.infer<typeof AddObject>;

function setting<const S extends Setting>(s: S): S {
  return s;
}

/** `90s`, `30m`, `2h`, or a bare number of minutes, to milliseconds. */
export function parseDuration(value: string, label: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h)?$/.exec(value.trim());
  const ms = m ? Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'm') as 's' | 'm' | 'h'] : NaN;
  if (!Number.isFinite(ms) || ms < 1000 || ms > 7 * 24 * 3_600_000) {
    throw new UsageError(`${label} must be a duration like 90s, 30m or 2h (from 1s to 168h), got ${JSON.stringify(value)}`);
  }
  return ms;
}

/** `500M`, `2G`, `1.5T` (powers of 1024, an optional `iB` or `B`), or a bare number of bytes; `0` is allowed. */
export function parseSize(value: string, label: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(?:([KMGT])(?:i?B)?|B)?$/i.exec(value.trim());
  const bytes = m ? Math.floor(Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] ?? ' ').toUpperCase())) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes > 1024 ** 5) {
    throw new UsageError(`${label} must be a size like 500M, 2G or 10G (0 turns it off), got ${JSON.stringify(value)}`);
  }
  return bytes;
}

/** `--min-platform 20210826T002459Z` or `7.0=20210826T002459Z`. */
export function parseMinPlatform(value: string, label = '--min-platform'): Record<string, string> {
  const [ver, stamp] = value.includes('=') ? value.split('=', 2) : ['7.0', value];
  if (!/^\d+(\.\d+)*$/.test(ver) || !isPlatformStamp(stamp)) {
    throw new UsageError(`${label} must be a platform stamp like 20210826T002459Z (optionally 7.0=STAMP), got ${JSON.stringify(value)}`);
  }
  return { [ver]: stamp };
}

/**
 * `-m`: the manifest as JSON, or `@FILE`, or the path of an existing file
 * (as `-m manifest.json` is often written). A file's text is never shown
 * in a message (input-file.ts).
 */
export function parseManifestArg(value: string, label: string): Record<string, unknown> {
  const t = value.trim();
  if (t.startsWith('{') || t.startsWith('[')) return parseManifestObject(value);
  const path = value.startsWith('@') ? value.slice(1) : value;
  if (value.startsWith('@') || (path !== '' && statSync(path, { throwIfNoEntry: false }) !== undefined)) {
    const what = `${label} file ${path}`;
    const text = readInputFile(path, LIMITS.inputChars, what, `${label} takes the manifest as JSON or @FILE`);
    const json = parseInputJson(text, what);
    if (!json || typeof json !== 'object' || Array.isArray(json)) throw new UsageError(`${what} is not a JSON object`);
    return parseManifestObject(text);
  }
  // JSON that is not an object (null, 1, "x") gets the manifest's own message.
  try {
    JSON.parse(value);
  } catch {
    throw new UsageError(`${label} takes the manifest as JSON or @FILE, got ${JSON.stringify(value.slice(0, 40))}`, `e.g. ${label} '{"name":"NAME","version":"1.0.0"}' or ${label} @manifest.json`);
  }
  return parseManifestObject(value);
}

const PREFIX_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

export function parsePrefix(value: string, label: string): string {
  if (!PREFIX_RE.test(value) || value.length > 200) {
    throw new UsageError(`${label} must be a file name prefix (letters, digits, . _ + -), got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The longest `PREFIX-VERSION` an output file name (with seal's temp name around it) leaves room for. */
export const MAX_STEM_BYTES = 200;

/**
 * A value that becomes part of an output file name (`PREFIX-VERSION.zfs.gz`
 * in --output-dir) must be one file-name component: no "/", not "." or
 * "..", no control characters, not too long.
 */
export function checkFileNamePart(value: string, label: string, hint?: string): string {
  const why = value.includes('/')
    ? 'has "/"'
    : value === '.' || value === '..'
      ? `is "${value}"`
      : [...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)
        ? 'has a control character'
        : Buffer.byteLength(value) > MAX_STEM_BYTES
          ? `is longer than ${MAX_STEM_BYTES} bytes`
          : undefined;
  if (why) throw new UsageError(`${label} becomes part of output file names (PREFIX-VERSION.zfs.gz) and ${why}: ${JSON.stringify(value.slice(0, 80))}`, hint);
  return value;
}

/**
 * An image's name in a definition with several (`"images": [{ "name": ... }]`):
 * its handle for --only, its state file and its log lines. One file-name
 * component of plain ASCII, bounded.
 */
export const IMAGE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
export const IMAGE_NAME_RULE = 'letters, digits, . _ + -, starting with a letter or digit, at most 64';

export function parseImageName(value: string, label: string): string {
  if (!IMAGE_NAME_RE.test(value)) throw new UsageError(`${label} must be an image name (${IMAGE_NAME_RULE}), got ${JSON.stringify(value.slice(0, 80))}${value.length > 80 ? '…' : ''}`);
  return value;
}

/** At most this many builds at once in one process (`--jobs`). */
export const MAX_JOBS = 64;

function parseJobs(value: string, label: string): number {
  const n = /^\d{1,3}$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!(n >= 1 && n <= MAX_JOBS)) throw new UsageError(`${label} must be a number of builds at once from 1 to ${MAX_JOBS}, got ${JSON.stringify(value.slice(0, 40))}`);
  return n;
}

/** What to do about a Jenkins STAMP made from a branch like feature/x. */
export const VERSION_HINT = 'a STAMP made from a branch like feature/x: replace "/", e.g. "$(echo "$BRANCH_NAME" | tr / -)-$TIMESTAMP"';

export function parseImageVersion(value: string, label: string): string {
  return checkFileNamePart(value, label, value.includes('/') ? VERSION_HINT : undefined);
}

function parseUuid(value: string, label: string): string {
  const uuid = value.toLowerCase();
  if (!isUuid(uuid)) throw new UsageError(`${label} must be an image uuid, got ${JSON.stringify(value)}`);
  return uuid;
}

function parseChoice<const C extends readonly string[]>(choices: C) {
  return (value: string, label: string): C[number] => {
    if (!choices.includes(value)) throw new UsageError(`${label} must be one of ${choices.join(', ')}`);
    return value;
  };
}

/** A proto for -d: a directory (the copy's rule, host/copy) or an archive (image/tar). */
async function checkProto(v: string, label: string): Promise<string> {
  const abs = resolve(v);
  if ((await stat(abs).catch(() => undefined))?.isFile()) {
    const problem = await archiveProblem(abs);
    if (problem) throw new UsageError(`proto archive (${label}) ${v} ${problem}`);
    return abs;
  }
  // The copy's own rule, so that a proto it would refuse fails here, before prepare.
  const problem = await protoDirProblem(abs);
  if (problem) throw new UsageError(`proto directory (${label}) ${v} ${problem === 'is not a directory' ? 'is neither a directory nor a regular file (an archive)' : problem}`);
  return abs;
}

async function existingDir(path: string, what: string): Promise<string> {
  const abs = resolve(path);
  const st = await stat(abs).catch(() => undefined);
  if (!st) throw new UsageError(`${what} ${path} does not exist`);
  if (!st.isDirectory()) throw new UsageError(`${what} ${path} is not a directory`);
  return abs;
}

const configPath: ConfigKey<string> = { schema: z.string(), toText: (v, dir) => (isAbsolute(v) ? v : resolve(dir, v)) };
const configString: ConfigKey<string> = { schema: z.string(), toText: text };
const configBoolean = { schema: z.boolean(), toText: String } satisfies ConfigKey<boolean>;

const LOGGING: readonly CommandId[] = COMMANDS;
/** Resolved before the rest, so that a log file catches even a bad-input error. */
export const LOGGING_SETTINGS = ['verbose', 'log-format', 'log-file'] as const;
// plan reads the same definition as build (and checks nothing on the machine: no `check`).
const DEFINING: readonly CommandId[] = ['build', 'prepare', 'plan'];
const RUNNING: readonly CommandId[] = ['build', 'prepare', 'assemble', 'pkgadd', 'seal'];

export const DEFAULT_STATE_PATH = '.buildimage/state.json';
/** The build definition `buildimage init` writes, read from the working directory when --config is not given. */
export const DEFAULT_DEFINITION_PATH = 'buildimage.json';
export const DEFINITION_TEMPLATES = ['smartdc-service', 'plain'] as const;
export const JENKINSFILE_KINDS = ['stages', 'single', 'publish-rerun', 'multi', 'none'] as const;
/** triton-origin-x86_64-21.4.0, the base most Triton services build on (eng's BASE_IMAGE_UUID). */
export const DEFAULT_BASE = '502eeef2-8267-489f-b19c-a206906f57ef';
export const DEFAULT_IMAGE_VER = '21.4.0';
export const DEFAULT_PI = '20210826T002459Z';

export const SETTINGS = {
  // ---- logging, every command
  verbose: setting({ type: 'boolean', char: 'v', help: 'verbose: show commands and their output', commands: LOGGING }),
  'log-format': setting({
    type: 'string',
    help: 'log lines on stderr (and in --log-file): human = "[ 12.3s] message", json = one object per line',
    options: ['human', 'json'],
    default: 'human',
    env: 'BUILDIMAGE_LOG_FORMAT',
    parse: parseChoice(['human', 'json'] as const),
    commands: LOGGING,
  }),
  'log-file': setting({
    type: 'string',
    help: 'also append the log to this file, always with the -v detail',
    env: 'BUILDIMAGE_LOG_FILE',
    parse: text,
    commands: LOGGING,
  }),

  // ---- the build definition (build, prepare; keys of buildimage.json)
  config: setting({
    type: 'string',
    help: 'build definition file (see `buildimage init`) with values for build\'s settings; the command line wins over it',
    // `buildimage prepare` in a component's directory reads its buildimage.json, as `init` wrote it.
    default: () => Promise.resolve(lstatSync(DEFAULT_DEFINITION_PATH, { throwIfNoEntry: false }) ? DEFAULT_DEFINITION_PATH : undefined),
    shownDefault: `${DEFAULT_DEFINITION_PATH} when there is one here`,
    parse: text,
    commands: [...DEFINING, 'lock'],
    per: { lock: { help: 'build definition file: the lockfile is written beside it (and its "lock-file" key is read)' } },
  }),
  image: setting({
    type: 'string',
    char: 'i',
    help: 'base (origin) image uuid',
    required: { what: 'the base image uuid', example: 'UUID' },
    parse: parseUuid,
    config: configString,
    field: 'imageUuid',
    stored: z.string(),
    commands: [...DEFINING, 'doctor'],
    per: { doctor: { help: 'also check this base image is in the source (or already imported)' } },
  }),
  dir: setting({
    type: 'string',
    char: 'd',
    help: "proto: a directory copied into the image's /, or an archive (tar, .tar.gz/.tgz, .tar.bz2, .tar.xz) whose root/ is extracted there, as eng's stage dir",
    required: { what: 'the proto directory or archive', example: 'DIR' },
    parse: text,
    check: checkProto,
    config: configPath,
    field: 'protoDir',
    stored: z.string(),
    commands: DEFINING,
  }),
  add: setting({
    type: 'string',
    multiple: true,
    help: "another archive (an agent's prebuilt tarball) extracted into the image after -d: ARCHIVE (its root/ is the image's /) or DIR=ARCHIVE (all of it under DIR, e.g. /opt/smartdc or eng's root/opt/smartdc); repeatable, in order, later files win",
    parse: (v: string, label: string): AddArchive[] => [parseAddArchive(v, label)],
    check: async (v: AddArchive[], label: string) => {
      const out: AddArchive[] = [];
      for (const a of v) {
        const problem = await archiveProblem(resolve(a.path));
        if (problem) throw new UsageError(`archive (${label}) ${a.path} ${problem}`);
        out.push({ ...a, path: resolve(a.path) });
      }
      return out;
    },
    config: {
      schema: z.union([z.array(z.union([z.string(), AddObject])), z.string(), AddObject]),
      // Back to text, the archive's path made absolute: `DIR=PATH`, or `=PATH` (the path may hold a "=").
      toText: (v: AddConfig | AddConfig[], dir: string) =>
        (Array.isArray(v) ? v : [v]).map((x) => {
          if (typeof x !== 'string' && x.dir?.includes('=')) throw new UsageError(`add: "dir" ${JSON.stringify(x.dir)} has a "="`);
          const a = typeof x === 'string' ? parseAddArchive(x, 'add') : parseAddArchive(`${x.dir ?? ''}=${x.archive}`, 'add');
          return `${a.dir ?? ''}=${isAbsolute(a.path) ? a.path : resolve(dir, a.path)}`;
        }),
    },
    field: 'addArchives',
    stored: z.array(z.object({ path: z.string(), dir: z.string().optional() })).optional(),
    commands: DEFINING,
  }),
  'keep-owners': setting({
    type: 'boolean',
    help: "archives (-d, --add): keep their files' numeric owners instead of root:root (eng's chown -R root:root)",
    config: configBoolean,
    field: 'keepOwners',
    stored: z.boolean().optional(),
    commands: DEFINING,
  }),
  manifest: setting({
    type: 'string',
    char: 'm',
    help: 'image manifest JSON: name and version required; other v2 fields you own (description, tags, homepage, requirements, ...); merged over the definition file\'s',
    required: { what: 'the image manifest JSON', example: '\'{"name":…,"version":…}\'' },
    parse: parseManifestArg,
    merge: (fromFile: Record<string, unknown>, fromCommandLine: Record<string, unknown>) => ({ ...fromFile, ...fromCommandLine }),
    config: { schema: z.record(z.unknown()), toText: (v: Record<string, unknown>) => JSON.stringify(v) },
    field: 'manifest',
    stored: z.record(z.unknown()).and(z.object({ name: z.string(), version: z.string() })),
    commands: DEFINING,
  }),
  'image-version': setting({
    type: 'string',
    help: "the image's version (eng: the STAMP); wins over the manifest's; part of the output file names, so no \"/\"",
    parse: parseImageVersion,
    commands: DEFINING,
  }),
  packages: setting({
    type: 'string',
    char: 'p',
    help: 'comma-separated pkgsrc packages for `pkg_add -U` (names as the original allowed: letters, digits, - _ . +)',
    default: '',
    shownDefault: 'none',
    parse: (v: string) => parsePackageList(v),
    config: { schema: z.union([z.array(z.string()), z.string()]), toText: (v: string[] | string) => (Array.isArray(v) ? v.join(',') : v) },
    field: 'packages',
    stored: z.array(z.string()),
    commands: DEFINING,
  }),
  prefix: setting({
    type: 'string',
    char: 'P',
    help: 'output file prefix',
    shownDefault: 'NAME-zfs',
    parse: parsePrefix,
    config: configString,
    field: 'prefix',
    stored: z.string(),
    commands: DEFINING,
  }),
  motd: setting({ type: 'boolean', char: 'M', help: 'write /etc/motd', config: configBoolean, field: 'motd', stored: z.boolean(), commands: DEFINING }),
  'source-repo': setting({
    type: 'string',
    char: 'S',
    help: 'source repository URL shown in the motd (without any user, password or query values it has)',
    // Only shown (motd, build-info), never used: kept without credentials from the start.
    parse: (v: string, label: string) => {
      if (/[\n\r]/.test(v)) throw new UsageError(`${label} must be a single line`);
      return recordedUrl(v);
    },
    record: recordedUrl,
    config: configString,
    field: 'sourceRepo',
    stored: z.string().optional(),
    commands: DEFINING,
  }),
  audit: setting({
    type: 'boolean',
    char: 'a',
    help: '`pkg_admin fetch-pkg-vulnerabilities` + `audit` into a .pkgaudit report (findings are a report, not a failure)',
    config: configBoolean,
    field: 'audit',
    stored: z.boolean(),
    commands: DEFINING,
  }),
  upgrade: setting({
    type: 'boolean',
    char: 'u',
    help: '`pkgin update` and `pkgin -y full-upgrade` before pkg_add',
    config: configBoolean,
    field: 'upgrade',
    stored: z.boolean(),
    commands: DEFINING,
  }),
  scripts: setting({
    type: 'string',
    flag: 'run',
    multiple: true,
    help: 'a script run in the image after the packages are installed (in a chroot, as root, with the read-only host mounts; a clean environment: PATH, HOME=/root, LANG=C, LC_ALL=C, TZ=UTC); repeatable, in order; its output goes to the log; a failure fails the build. In buildimage.json: a list of paths (relative to the file) or {"path": ..., "env": {"NAME": "value"}}; --run replaces that list',
    parse: parseScriptArg,
    check: checkScripts,
    config: { schema: z.union([z.array(ScriptConfigSchema), ScriptConfigSchema]), toText: scriptConfigToText },
    field: 'scripts',
    stored: z.array(ScriptSchema).optional(),
    commands: DEFINING,
  }),
  locked: setting({
    type: 'boolean',
    help: 'install exactly the package versions of the lockfile (--lock-file): `pkg_add -U NAME-VERSION` for each, dependencies first, nothing resolved anew; with -u the locked upgrades are installed instead of running pkgin; fails naming each locked version the repository no longer has',
    config: configBoolean,
    commands: DEFINING,
  }),
  'write-lock': setting({
    type: 'boolean',
    help: 'after the build, write the package versions it resolved to the lockfile (--lock-file), for later builds with --locked',
    commands: ['build'],
  }),
  'lock-file': setting({
    type: 'string',
    help: 'the package lockfile that --locked reads and --write-lock writes',
    shownDefault: 'buildimage.lock.json beside --config (NAME.lock.json beside NAME.json), else in the current directory',
    parse: (v: string) => resolve(v),
    config: configPath,
    commands: [...DEFINING, 'lock'],
    per: { lock: { help: 'where to write the lockfile' } },
  }),
  source: setting({
    type: 'string',
    help: 'where base images come from: a directory of *.imgmanifest files with their image files beside them, or an IMGAPI URL',
    env: 'BUILDIMAGE_SOURCE',
    default: DEFAULT_SOURCE,
    parse: text,
    check: async (v: string) => (isUrl(v) ? v : existingDir(v, 'image source (--source)')),
    record: recordedUrl,
    config: { schema: z.string(), toText: (v: string, dir: string) => (isUrl(v) || isAbsolute(v) ? v : resolve(dir, v)) },
    field: 'source',
    stored: z.string(),
    commands: [...DEFINING, 'doctor'],
    per: { doctor: { help: 'image source to try: a directory or an IMGAPI URL' } },
  }),
  channel: setting({
    type: 'string',
    help: 'IMGAPI channel of the source',
    parse: (v: string, label: string) => {
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(v)) throw new UsageError(`${label} must be a channel name, got ${JSON.stringify(v)}`);
      return v;
    },
    config: configString,
    field: 'channel',
    stored: z.string().optional(),
    commands: [...DEFINING, 'doctor'],
  }),
  'dataset-root': setting({
    type: 'string',
    help: 'dataset holding images and zone analogs',
    env: 'BUILDIMAGE_DATASET_ROOT',
    default: async () => (isSmartOS() ? delegatedDataset() : undefined),
    shownDefault: "on SmartOS the zone's delegated zones/<zonename>/data",
    required: { what: 'the dataset holding images and zone analogs', example: 'POOL/DATASET' },
    parse: (v: string, label: string) => {
      try {
        assertDatasetName(v, 'dataset root');
      } catch (err) {
        throw new UsageError(`${label}: ${(err as Error).message}`);
      }
      // ZFS refuses "." and ".." components too; say so here rather than "does not exist" after prepare began.
      if (v.split('/').some((c) => c === '.' || c === '..')) throw new UsageError(`${label}: invalid dataset root name: ${JSON.stringify(v)} has a "." or ".." component`);
      return v;
    },
    field: 'datasetRoot',
    stored: z.string(),
    commands: [...DEFINING, 'clean', 'doctor', 'images', 'prune'],
    per: { clean: { help: 'with --all: dataset holding images and zone analogs' } },
  }),
  'output-dir': setting({
    type: 'string',
    help: 'where outputs are written (/tmp as the original, so eng\'s `cp /tmp/$(NAME)-zfs-$(VERSION).*` keeps working)',
    default: '/tmp',
    parse: (v: string) => resolve(v),
    check: async (v: string, label: string) => {
      const st = await stat(v).catch(() => undefined);
      if (st && !st.isDirectory()) throw new UsageError(`output directory ${v} (${label}) is not a directory`);
      return v;
    },
    config: configPath,
    field: 'outputDir',
    stored: z.string(),
    commands: [...DEFINING, 'doctor'],
  }),
  compression: setting({
    type: 'string',
    help: 'image file compression',
    options: COMPRESSIONS,
    default: 'gzip',
    parse: parseChoice(COMPRESSIONS),
    config: { schema: z.enum(COMPRESSIONS), toText: text },
    field: 'compression',
    stored: z.enum(COMPRESSIONS),
    commands: DEFINING,
  }),
  'min-platform': setting({
    type: 'string',
    help: 'requirements.min_platform stamp (20210826T002459Z or 7.0=STAMP); a min_platform given in -m wins',
    shownDefault: "on SmartOS the host's uname -v, elsewhere the origin's",
    parse: parseMinPlatform,
    config: configString,
    field: 'minPlatform',
    stored: z.record(z.string()).optional(),
    commands: DEFINING,
  }),
  hooks: setting({
    type: 'string',
    flag: 'hook',
    multiple: true,
    help: 'a command run on the host before or after a stage, as EVENT=PROGRAM or EVENT=\'["PROGRAM","ARG",...]\' (an argv, no shell; EVENT is before.STAGE or after.STAGE); repeatable; buildimage.json: "hooks": {"after.assemble": ["./check"], "before.seal": [["./a"], ["./b", "x"]]} (paths relative to the file). BUILDIMAGE_ROOT, BUILDIMAGE_STATE and BUILDIMAGE_STAGE are set; a failing hook fails the build',
    parse: parseHookArg,
    // A hook's program with a "/" must be there now, not at seal.
    check: async (v: Hook[], label: string) => {
      for (const h of checkHookCount(v, label)) {
        if (!(await stat(h.cwd).catch(() => undefined))?.isDirectory()) throw new UsageError(`${label}: ${hookName(h)}: its directory ${h.cwd} does not exist`);
        if (!h.argv[0].includes('/')) continue;
        const st = await stat(resolve(h.cwd, h.argv[0])).catch(() => undefined);
        if (!st?.isFile() || !(st.mode & 0o111)) throw new UsageError(`${label}: ${hookName(h)}: ${resolve(h.cwd, h.argv[0])} ${st ? 'is not an executable file' : 'does not exist'}`);
      }
      return v;
    },
    merge: (fromFile: Hook[], fromCommandLine: Hook[]) => [...fromFile, ...fromCommandLine],
    config: { schema: HooksConfigSchema, toText: hookTexts },
    field: 'hooks',
    stored: z.array(HookSchema).optional(),
    commands: DEFINING,
  }),
  'work-dir': setting({
    type: 'string',
    help: 'mountpoints, locks and per-build temp files',
    env: 'BUILDIMAGE_WORK_DIR',
    default: '/var/tmp/buildimage',
    parse: (v: string) => resolve(v),
    field: 'workDir',
    stored: z.string(),
    commands: [...DEFINING, 'clean', 'doctor', 'images', 'prune'],
    per: { clean: { help: 'with --all: mountpoints, locks and per-build temp files' } },
  }),

  // ---- several images in one definition ("images")
  only: setting({
    type: 'string',
    multiple: true,
    help: 'of a definition with "images": only these, by name (repeatable, or comma-separated); prepare takes exactly one',
    shownDefault: 'every image',
    parse: (v: string, label: string): string[] => v.split(',').map((n) => parseImageName(n.trim(), label)),
    commands: ['build', 'prepare', 'plan'],
  }),
  jobs: setting({
    type: 'string',
    help: `of a definition with "images": build up to N at once in this process (1 to ${MAX_JOBS})`,
    default: '1',
    parse: parseJobs,
    commands: ['build'],
  }),
  'fail-fast': setting({
    type: 'boolean',
    help: 'of a definition with "images": when one image fails, stop the others (each cleaned up) and start no more; without it a failure stops nothing else',
    commands: ['build'],
  }),

  'package-cache-size': setting({
    type: 'string',
    help: 'bound of the package cache under the work dir (pkgsrc packages fetched once, offered to pkg_add and pkgin in later builds, least recently used evicted): 500M, 2G, 10G; 0 turns it off',
    env: 'BUILDIMAGE_PACKAGE_CACHE_SIZE',
    default: '2G',
    parse: parseSize,
    field: 'packageCacheSize',
    stored: z.number().int().nonnegative().optional(),
    commands: DEFINING,
  }),

  // ---- running stages
  timeout: setting({
    type: 'string',
    help: `how long any single command may take: 90s, 30m, 2h; a bare number is minutes (the send and receive streams have no total limit: they fail after ${STREAM_STALL_MS / 60_000} minutes without data)`,
    default: '30m',
    parse: parseDuration,
    commands: RUNNING,
  }),
  state: setting({
    type: 'string',
    help: 'state file of a build in discrete stages',
    env: 'BUILDIMAGE_STATE',
    default: DEFAULT_STATE_PATH,
    parse: text,
    commands: [...RUNNING, 'clean', 'publish', 'lock'],
    per: {
      build: { default: null, help: 'keep the build state in this file (default: a file in the work dir, removed at the end)' },
      lock: { help: 'state file of a build whose pkgadd stage has run: its resolved package versions are written' },
      clean: { help: 'state file of the build to clean' },
      // Publishing a build's outputs is asked for on the command line, never by a variable a Jenkinsfile sets for its stages.
      publish: { default: null, env: null, help: 'state file of a finished build: its outputs are put into <bits>/<name>/ and published' },
    },
  }),

  'keep-on-failure': setting({
    type: 'boolean',
    help: "on failure keep the zone analog and the state for inspection (not when interrupted): run the failed stage again with the same --state, or `clean` it; once given, the build's later stages keep too",
    env: 'BUILDIMAGE_KEEP_ON_FAILURE',
    commands: RUNNING,
  }),

  // ---- clean
  all: setting({
    type: 'boolean',
    help: 'clean every leftover under the dataset root and work dir whose process is gone, except builds kept on purpose (see --include-kept)',
    commands: ['clean'],
  }),
  'include-kept': setting({
    type: 'boolean',
    help: 'with --all: also builds kept after a failure (--keep-on-failure) and builds waiting for their next discrete stage',
    commands: ['clean'],
  }),
  'missing-ok': setting({
    type: 'boolean',
    help: 'no state file is not an error: nothing to clean (for post { always { } })',
    commands: ['clean'],
  }),

  // ---- doctor
  publish: setting({
    type: 'boolean',
    help: 'also check Manta (MANTA_URL, MANTA_USER, MANTA_KEY_ID) and the publish credentials',
    commands: ['doctor'],
  }),
  junit: setting({
    type: 'string',
    help: "also write the checks as a JUnit XML report to this file, one test case per check (Jenkins: junit 'FILE')",
    parse: text,
    commands: ['doctor'],
  }),

  // ---- publish (bits-upload.sh's flags, and ours)
  branch: setting({ type: 'string', char: 'b', help: 'branch (names the <branch>-latest pointer)', parse: text, commands: ['publish'] }),
  'try-branch': setting({ type: 'string', char: 'B', help: 'try branch: wins over -b for the pointer and channel', parse: text, commands: ['publish'] }),
  'upload-dir': setting({
    type: 'string',
    char: 'd',
    help: 'upload base directory: Manta path (relative = under /<user>/stor) or, with -L, a local path',
    parse: text,
    commands: ['publish'],
  }),
  'bits-dir': setting({ type: 'string', char: 'D', help: 'local directory with the bits', default: 'bits', parse: text, commands: ['publish'] }),
  local: setting({ type: 'boolean', char: 'L', help: '-d is a local directory, not Manta', commands: ['publish'] }),
  component: setting({
    type: 'string',
    flag: 'name',
    char: 'n',
    help: 'component name',
    shownDefault: 'with --state: the image name',
    parse: text,
    commands: ['publish'],
  }),
  'publish-updates': setting({ type: 'boolean', char: 'p', help: 'also import images into the updates IMGAPI', commands: ['publish'] }),
  stamp: setting({
    type: 'string',
    char: 't',
    help: 'build stamp',
    shownDefault: '<bits>/<name>/latest-build-stamp',
    parse: text,
    commands: ['publish'],
  }),
  'updates-channel': setting({
    type: 'string',
    flag: 'channel',
    help: 'updates IMGAPI channel',
    shownDefault: 'UPDATES_IMGADM_CHANNEL, else ?channel= in UPDATES_IMGADM_URL, else from the branch',
    parse: text,
    commands: ['publish'],
  }),
  'upload-file': setting({
    type: 'boolean',
    help: 'with -p: upload the image file to IMGAPI from here instead of IMGAPI fetching it from Manta',
    commands: ['publish'],
  }),
  'dry-run': setting({
    type: 'boolean',
    help: 'print the plan (each upload, skip and API call) and change nothing',
    commands: ['publish', 'prune'],
    per: { prune: { help: 'say what would be destroyed, and destroy nothing' } },
  }),

  // ---- prune
  'keep-days': setting({
    type: 'string',
    help: 'keep base images a build used within this many days (0: destroy every unused one)',
    default: String(DEFAULT_KEEP_DAYS),
    parse: (v: string, label: string) => {
      const n = /^\d{1,5}$/.test(v.trim()) ? Number(v.trim()) : NaN;
      if (!(n >= 0 && n <= MAX_KEEP_DAYS)) throw new UsageError(`${label} must be a whole number of days from 0 to ${MAX_KEEP_DAYS}, got ${JSON.stringify(v.slice(0, 40))}`);
      return n;
    },
    commands: ['prune'],
  }),

  // ---- init
  'image-name': setting({
    type: 'string',
    flag: 'name',
    char: 'n',
    help: 'image name',
    shownDefault: "the repo's name without sdc-/triton-/manta-",
    parse: text,
    commands: ['init'],
  }),
  description: setting({ type: 'string', help: 'image description', shownDefault: '"NAME image"', parse: text, commands: ['init'] }),
  // -i is --image in every command: init's was --base, which it still takes.
  base: setting({
    type: 'string',
    flag: 'image',
    aliases: ['base'],
    char: 'i',
    help: 'base (origin) image uuid for buildimage.json (--base is the same)',
    default: DEFAULT_BASE,
    shownDefault: `triton-origin-x86_64-21.4.0, ${DEFAULT_BASE}`,
    parse: parseUuid,
    commands: ['init'],
  }),
  template: setting({
    type: 'string',
    help: 'build definition: a Triton service image, or a plain one',
    options: DEFINITION_TEMPLATES,
    default: 'smartdc-service',
    parse: parseChoice(DEFINITION_TEMPLATES),
    commands: ['init'],
  }),
  jenkinsfile: setting({
    type: 'string',
    help: 'which Jenkinsfile',
    options: JENKINSFILE_KINDS,
    default: 'stages',
    parse: parseChoice(JENKINSFILE_KINDS),
    commands: ['init'],
  }),
  'image-ver': setting({
    type: 'string',
    help: "Jenkins agent image_ver label (must match the base image's pkgsrc)",
    default: DEFAULT_IMAGE_VER,
    parse: text,
    commands: ['init'],
  }),
  pi: setting({ type: 'string', help: 'Jenkins agent platform image label', default: DEFAULT_PI, parse: text, commands: ['init'] }),
  force: setting({ type: 'boolean', char: 'f', help: 'replace existing buildimage.json and Jenkinsfile', commands: ['init'] }),

  // ---- verify
  key: setting({
    type: 'string',
    help: "the signer's OpenSSH public key file (KEY.pub: RSA, ECDSA or Ed25519)",
    required: { what: 'the public key to check the signature with', example: 'KEY.pub' },
    parse: text,
    commands: ['verify'],
  }),
  provenance: setting({
    type: 'string',
    help: "the image's provenance envelope (default: beside the image, <stem>.provenance.dsse.json)",
    parse: text,
    commands: ['verify'],
  }),
} as const;

export type Settings = typeof SETTINGS;
export type SettingId = keyof Settings;

/** The long flag of a setting. */
export function flagName(id: SettingId): string {
  return (SETTINGS[id] as Setting).flag ?? id;
}

/** How messages name a setting: its short flag if it has one (as the original tool's users know them). */
export function label(id: SettingId): string {
  const s = SETTINGS[id] as Setting;
  return s.char ? `-${s.char}` : `--${flagName(id)}`;
}

/** The settings a command takes, in table order. */
export function settingsOf(command: CommandId): SettingId[] {
  return (Object.keys(SETTINGS) as SettingId[]).filter((id) => (SETTINGS[id] as Setting).commands.includes(command));
}

/** The default a command uses (undefined: none, or computed). */
export function defaultFor(id: SettingId, command: CommandId): Setting['default'] {
  const s = SETTINGS[id] as Setting;
  const per = s.per?.[command];
  if (per && 'default' in per) return per.default ?? undefined;
  return s.default;
}

/** The environment variable a command reads the setting from, if any. */
export function envFor(id: SettingId, command: CommandId): string | undefined {
  const s = SETTINGS[id] as Setting;
  const per = s.per?.[command];
  return per && 'env' in per ? undefined : s.env;
}

export function helpFor(id: SettingId, command: CommandId): string {
  const s = SETTINGS[id] as Setting;
  return s.per?.[command]?.help ?? s.help;
}
