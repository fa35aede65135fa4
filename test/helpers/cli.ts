/** Runs the real CLI (bin/buildimage → bin/run.js over dist/) as a child process. */
import { execa } from 'execa';
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

export async function cli(args: string[], opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const r = await execa(BIN, args, {
    cwd: opts.cwd ?? REPO,
    env: { BUILDIMAGE_LOG_LEVEL: 'info', ...opts.env },
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
