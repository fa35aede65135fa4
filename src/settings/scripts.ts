/**
 * Scripts run in the image (`--run`, buildimage.json's "scripts"): named by
 * the user on the command line or in the definition, never taken from an
 * image or a server. Each is read here once, when the build is defined: a
 * regular file (not a link, a FIFO or a device), of bounded size; the
 * definition records its path, name, sha256 and the variables it gets, and
 * pkgadd runs exactly the bytes with that digest (build/scripts).
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { z } from 'zod';
import { UsageError } from '../core/errors.js';
import { readAtMost } from '../core/files.js';

/** The most one script may hold. */
export const MAX_SCRIPT_BYTES = 256 * 1024;
/** The most scripts one build runs. */
export const MAX_SCRIPTS = 32;
/** A script's variables: how many, and how long a value may be (they travel as argv and are recorded). */
export const MAX_SCRIPT_VARS = 32;
export const MAX_SCRIPT_VALUE_BYTES = 4096;

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

export const ScriptEnvSchema = z.record(z.string());

/** buildimage.json's form of one entry: a path, or a path with the variables the script gets. */
export const ScriptConfigSchema = z.union([z.string(), z.object({ path: z.string(), env: ScriptEnvSchema.optional() }).strict()]);

/** One script as the definition records it. */
export const ScriptSchema = z.object({
  /** Absolute path on the build machine, as given. */
  path: z.string(),
  /** Its file name: how the log and messages name it. */
  name: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  /** Variables it gets besides the clean environment (recorded: no secrets). */
  env: ScriptEnvSchema,
});
export type Script = z.infer<typeof ScriptSchema>;

/** What a parsed `--run` names, before the file is read. */
export interface ScriptSpec {
  path: string;
  env: Record<string, string>;
  name?: string;
  sha256?: string;
  size?: number;
}

/** A name in messages and log lines: the file name, quoted when it has anything odd in it. */
export function scriptName(path: string): string {
  const name = basename(path);
  return /^[\w@%+=:,.-]{1,100}$/.test(name) ? name : JSON.stringify(name.slice(0, 100));
}

function checkEnv(env: Record<string, unknown>, label: string): Record<string, string> {
  const entries = Object.entries(env);
  if (entries.length > MAX_SCRIPT_VARS) throw new UsageError(`${label}: a script may get at most ${MAX_SCRIPT_VARS} variables, got ${entries.length}`);
  for (const [k, v] of entries) {
    if (!VAR_NAME.test(k)) throw new UsageError(`${label}: ${JSON.stringify(k.slice(0, 40))} is not a variable name (letters, digits, _; not starting with a digit)`);
    if (typeof v !== 'string') throw new UsageError(`${label}: variable ${k} must be a string`);
    if (v.includes('\0')) throw new UsageError(`${label}: variable ${k} has a NUL character`);
    if (Buffer.byteLength(v) > MAX_SCRIPT_VALUE_BYTES) throw new UsageError(`${label}: variable ${k} is longer than ${MAX_SCRIPT_VALUE_BYTES} bytes`);
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

/**
 * `--run` text: a path, or `{"path": ..., "env": {...}}` (what the file's
 * object form becomes). The path is made absolute here.
 */
export function parseScriptArg(text: string, label: string): ScriptSpec[] {
  if (text.trimStart().startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new UsageError(`${label} takes a script path or {"path": ..., "env": {...}}: not valid JSON`);
    }
    const parsed = ScriptConfigSchema.safeParse(json);
    if (!parsed.success || typeof parsed.data === 'string') throw new UsageError(`${label} takes {"path": "SCRIPT", "env": {"NAME": "value"}}: ${parsed.success ? 'not an object' : parsed.error.issues[0].message}`);
    if (!parsed.data.path) throw new UsageError(`${label}: "path" is empty`);
    return [{ path: resolve(parsed.data.path), env: checkEnv(parsed.data.env ?? {}, label) }];
  }
  if (!text) throw new UsageError(`${label} takes a script path, got ""`);
  return [{ path: resolve(text), env: {} }];
}

/** buildimage.json's "scripts" as `--run` texts, paths relative to the file's directory. */
export function scriptConfigToText(v: z.infer<typeof ScriptConfigSchema> | z.infer<typeof ScriptConfigSchema>[], dir: string): string[] {
  return (Array.isArray(v) ? v : [v]).map((x) => {
    const path = typeof x === 'string' ? x : x.path;
    // An empty path stays empty (refused by the parser) rather than becoming the directory.
    const abs = path ? resolve(dir, path) : '';
    // Always the object form: a path starting with "{" stays a path.
    return JSON.stringify({ path: abs, ...(typeof x !== 'string' && x.env ? { env: x.env } : {}) });
  });
}

/**
 * The script's bytes: a regular file (not followed if it is a link, the open
 * does not block on a FIFO), at most MAX_SCRIPT_BYTES. `what` names it
 * ("script (--run) setup.sh"); its text is never in a message.
 */
export async function readScript(path: string, what: string): Promise<Buffer> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'ELOOP' ? 'it is a symbolic link' : err.code === 'EACCES' ? 'permission denied' : (err.code ?? err.message);
    throw new UsageError(`cannot read ${what}: ${why}`, 'name the script file itself');
  });
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new UsageError(`cannot read ${what}: not a regular file`, 'name the script file itself');
    if (st.size > MAX_SCRIPT_BYTES) throw new UsageError(`${what} is larger than ${MAX_SCRIPT_BYTES} bytes`);
    const bytes = await readAtMost(fh, MAX_SCRIPT_BYTES);
    if (bytes.length > MAX_SCRIPT_BYTES) throw new UsageError(`${what} is larger than ${MAX_SCRIPT_BYTES} bytes`);
    return bytes;
  } finally {
    await fh.close();
  }
}

export const sha256Hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Build definition: each script read once, its digest recorded. */
export async function checkScripts(specs: ScriptSpec[], label: string): Promise<Script[]> {
  if (specs.length > MAX_SCRIPTS) throw new UsageError(`${label}: at most ${MAX_SCRIPTS} scripts, got ${specs.length}`);
  const out: Script[] = [];
  for (const s of specs) {
    const name = scriptName(s.path);
    const bytes = await readScript(s.path, `script (${label}) ${s.path}`);
    out.push({ path: s.path, name, sha256: sha256Hex(bytes), size: bytes.length, env: s.env });
  }
  return out;
}
