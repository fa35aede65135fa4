/**
 * What every command shares: logging flags, and turning any error into one
 * line on stderr with the right exit code (never a stack trace).
 */
import { Command, Flags, Errors } from '@oclif/core';
import { BuildimageError, ExitCode, oneLine } from '../errors.js';
import { closeLog, configureLog, log, logToFileOnly, type LogFormat } from '../log.js';

/**
 * A reader that goes away (`buildimage … | head`, a dropped log pipe) makes
 * writes to stdout and stderr fail with EPIPE, which Node raises as an
 * uncaught error: a build would die mid-stage and leave its mounts and zone
 * analog behind. The output is dropped instead; the build finishes or fails
 * as it would have, and cleans up (a --log-file still gets every line).
 */
for (const out of [process.stdout, process.stderr]) out.on('error', () => undefined);

export abstract class BaseCommand extends Command {
  static enableJsonFlag = true;

  static baseFlags = {
    verbose: Flags.boolean({ char: 'v', description: 'verbose: show commands and their output', default: false }),
    'log-format': Flags.string({
      description: 'log lines on stderr (and in --log-file): human = "[ 12.3s] message", json = one object per line',
      options: ['human', 'json'],
      default: 'human',
      env: 'BUILDIMAGE_LOG_FORMAT',
    }),
    'log-file': Flags.string({ description: 'also append the log to this file, always with the -v detail', env: 'BUILDIMAGE_LOG_FILE' }),
  };

  protected setupLogging(flags: { verbose?: boolean; 'log-format'?: string; 'log-file'?: string }): void {
    configureLog({
      verbose: flags.verbose,
      format: flags['log-format'] as LogFormat,
      file: flags['log-file'],
    });
  }

  /** The last line on success, for people and scripts that read logs. */
  protected result(line: string): void {
    if (!this.jsonEnabled()) process.stdout.write(`${line}\n`);
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    let code: number;
    let message: string;
    let hint: string | undefined;
    if (err instanceof BuildimageError) {
      code = err.exitCode;
      hint = err.hint;
      message = oneLine(err);
    } else if (err instanceof Errors.ExitError) {
      code = err.oclif.exit ?? 0;
      if (code === 0) return;
      message = oneLine(err);
    } else if ((err as { oclif?: unknown }).oclif || err.name?.includes('Flag') || err.name?.includes('Arg')) {
      // oclif parse errors: missing/unknown/invalid flags.
      code = ExitCode.USAGE;
      hint = 'see --help';
      message = oneLine(err.message.replace(/^.*error occurred:\s*/s, '').replace(/See more help with --help.*$/s, ''));
    } else {
      code = ExitCode.BUILD_FAILED;
      message = `unexpected error: ${oneLine(err)}`;
      hint = 'a bug: the stack is in the -v log; please report it';
      log.debug(err.stack ?? '');
    }
    const line = message + (hint ? ` (${hint})` : '');
    logToFileOnly('error', line);
    await closeLog();
    if (this.jsonEnabled?.()) {
      process.stdout.write(JSON.stringify({ ok: false, error: { message, ...(hint ? { hint } : {}), exitCode: code } }) + '\n');
    } else {
      process.stderr.write(`buildimage: error: ${line}\n`);
    }
    process.exit(code);
  }

  protected override async finally(): Promise<void> {
    await closeLog();
  }
}
