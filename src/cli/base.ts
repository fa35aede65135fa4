/**
 * What every command shares: logging flags, and turning any error into one
 * line on stderr with the right exit code (never a stack trace).
 */
import { Command, Flags, Errors } from '@oclif/core';
import { BuildimageError, ExitCode, oneLine } from '../errors.js';
import { configureLog, log, type LogFormat } from '../log.js';

export abstract class BaseCommand extends Command {
  static enableJsonFlag = true;

  static baseFlags = {
    verbose: Flags.boolean({ char: 'v', description: 'verbose: show commands and their output', default: false }),
    'log-format': Flags.string({ description: 'log line format', options: ['human', 'json'], default: 'human' }),
    'log-file': Flags.string({ description: 'also write the log to this file' }),
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
    if (err instanceof BuildimageError) {
      code = err.exitCode;
      message = oneLine(err) + (err.hint ? ` (${err.hint})` : '');
    } else if (err instanceof Errors.ExitError) {
      code = err.oclif.exit ?? 0;
      if (code === 0) return;
      message = oneLine(err);
    } else if ((err as { oclif?: unknown }).oclif || err.name?.includes('Flag') || err.name?.includes('Arg')) {
      // oclif parse errors: missing/unknown/invalid flags.
      code = ExitCode.USAGE;
      message = oneLine(err.message.replace(/^.*error occurred:\s*/s, '').replace(/See more help with --help.*$/s, '')) + ' (see --help)';
    } else {
      code = ExitCode.BUILD_FAILED;
      message = `unexpected error: ${oneLine(err)}`;
      log.debug(err.stack ?? '');
    }
    if (this.jsonEnabled?.()) {
      process.stdout.write(JSON.stringify({ ok: false, error: { message, exitCode: code } }) + '\n');
    } else {
      process.stderr.write(`buildimage: error: ${message}\n`);
    }
    await new Promise((r) => log.on('finish', r).end()).catch(() => undefined);
    process.exit(code);
  }
}
