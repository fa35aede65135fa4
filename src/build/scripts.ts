/**
 * The definition's scripts (`--run`, buildimage.json "scripts"), run in the
 * image at the end of pkgadd, in the chroot it mounted: each one's bytes
 * read again from where the definition found them and checked against the
 * sha256 it recorded (a discrete stage runs exactly what was defined),
 * written into the image under a name no link is followed at, run in a
 * clean environment (host/chroot runScriptInChroot: namespaces of its own
 * on Linux), removed. A failure is one line naming the script.
 */
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildError } from '../core/errors.js';
import { NEW_FILE_FLAGS } from '../core/files.js';
import { log } from '../core/log.js';
import { runScriptInChroot } from '../host/chroot.js';
import { CHROOT_PATH } from '../pkgsrc/tools.js';
import { readScript, sha256Hex, type Script } from '../settings/scripts.js';

/** Where the n-th script (from 1) is put in the image root while it runs. */
export function scriptTempName(n: number): string {
  return `.buildimage-script-${n}`;
}

/** The environment a script gets: nothing of buildimage's own (no credential, no token), and the definition's variables. */
export function scriptEnv(vars: Record<string, string>): Record<string, string> {
  return { PATH: CHROOT_PATH, HOME: '/root', LANG: 'C', LC_ALL: 'C', TZ: 'UTC', ...vars };
}

/** Log lines are bounded: a script's very long line is cut. */
const MAX_LOG_LINE = 4000;

/** The script's bytes as defined: read again (not followed, bounded) and checked against the recorded digest. */
async function definedBytes(s: Script): Promise<Buffer> {
  const bytes = await readScript(s.path, `script ${s.name} (${s.path})`).catch((err: unknown) => {
    throw new BuildError(`${(err as Error).message} (it was there when the build was defined)`, { hint: 'keep the scripts in place until the build is done' });
  });
  const now = sha256Hex(bytes);
  if (now !== s.sha256) {
    throw new BuildError(`script ${s.name} (${s.path}) changed since the build was defined: sha256 ${now}, defined as ${s.sha256}`, {
      hint: 'start the build again with `prepare` to run the script as it is now',
    });
  }
  return bytes;
}

/** Writes the script at `name` in the image root: a new file, never through a link or over anything there. */
async function place(root: string, name: string, bytes: Buffer, script: string): Promise<string> {
  const path = join(root, name);
  const fh = await open(path, NEW_FILE_FLAGS, 0o700).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST' || err.code === 'ELOOP') throw new BuildError(`cannot put script ${script} into the image: /${name} is already there (not followed, not replaced)`);
    throw new BuildError(`cannot put script ${script} into the image at /${name}: ${err.message}`);
  });
  try {
    await fh.writeFile(bytes);
    await fh.chmod(0o700);
  } finally {
    await fh.close();
  }
  return path;
}

/** What a script's end says: undefined for success. */
function failure(s: Script, r: { exitCode?: number; signal?: string; timedOut: boolean }, timeoutMs: number): BuildError | undefined {
  if (r.timedOut) {
    return new BuildError(`script ${s.name} timed out after ${Math.round(timeoutMs / 1000)}s; it was stopped with everything it started`, { hint: 'raise --timeout if it is just slow' });
  }
  if (r.signal) return new BuildError(`script ${s.name} was killed by ${r.signal}`);
  if (r.exitCode !== 0) return new BuildError(`script ${s.name} failed with exit status ${r.exitCode ?? '?'}`, { hint: 'its output is in the log, each line prefixed with its name' });
  return undefined;
}

/** Runs the scripts in order in the mounted chroot at `root`; the first failure stops the build. */
export async function runScripts(root: string, scripts: readonly Script[], timeoutMs: number): Promise<void> {
  for (const [i, s] of scripts.entries()) {
    const bytes = await definedBytes(s);
    const name = scriptTempName(i + 1);
    log.info(`script ${s.name} (${s.size} bytes, sha256 ${s.sha256.slice(0, 12)}…)`);
    const path = await place(root, name, bytes, s.name);
    let r;
    try {
      r = await runScriptInChroot(root, `/${name}`, {
        env: scriptEnv(s.env),
        timeoutMs,
        onLine: (line) => log.info(`${s.name}: ${line.length > MAX_LOG_LINE ? `${line.slice(0, MAX_LOG_LINE)}…` : line}`),
      });
    } finally {
      // Whatever the script made of it: rm removes a link or a directory here, never what a link points at.
      await rm(path, { recursive: true, force: true });
    }
    const err = failure(s, r, timeoutMs);
    if (err) throw err;
  }
}
