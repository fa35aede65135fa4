/** Runs the real CLI (bin/buildimage → bin/run.js over dist/) as a child process. */
import { execa, type ResultPromise } from 'execa';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const REPO = fileURLToPath(new URL('../../..', import.meta.url));
/** What npm links as `buildimage`: the sh wrapper that execs node on bin/run.js. */
export const BIN = join(REPO, 'bin/buildimage');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Plain text whatever the environment says: oclif's colour library colours
 * even a pipe when CI is set (as on CI's machines), and the tests read text.
 */
const PLAIN = { NO_COLOR: '1' };

export async function cli(args: string[], opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const r = await execa(BIN, args, {
    cwd: opts.cwd ?? REPO,
    env: { BUILDIMAGE_LOG_LEVEL: 'info', ...PLAIN, ...opts.env },
    reject: false,
    timeout: opts.timeoutMs ?? 10 * 60 * 1000,
    stdin: 'ignore',
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** The user-facing error line(s): what a person sees on failure. */
export function errorLines(r: CliResult): string[] {
  return r.stderr.split('\n').filter((l) => l.startsWith('buildimage: error:'));
}

export interface StartedCli {
  child: ResultPromise;
  /** Resolves when stderr matches `until`; rejects if the CLI exits first. */
  ready: Promise<void>;
  stderr: () => string;
}

/**
 * Starts the CLI without waiting for it (to signal it mid-stage). No forced
 * kill after a signal: a CLI that does not stop by itself must show.
 */
export function startCli(args: string[], env: Record<string, string>, until: RegExp): StartedCli {
  const child = execa(BIN, args, { cwd: REPO, env: { ...PLAIN, ...env }, reject: false, stdin: 'ignore', forceKillAfterDelay: false });
  let err = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (until.test(err)) resolve();
    });
    void child.then(() => reject(new Error(`exited before ${until}: ${err}`)));
  });
  return { child, ready, stderr: () => err };
}
