/**
 * What every command shares: logging flags, and turning any error into one
 * line on stderr with the right exit code (never a stack trace).
 */
import { dirname } from 'node:path';
import { Command, Errors, type Interfaces } from '@oclif/core';
import { BuildimageError, ExitCode, oneLine } from '../core/errors.js';
import { ensureDir } from '../core/files.js';
import { onForcedExit } from '../core/interrupt.js';
import { closeLog, configureLog, jsonRecord, log, logFormat, logToFileOnly, type LogFormat } from '../core/log.js';
import { resolveSettings, type Resolved } from '../settings/resolve.js';
import type { BuildObserver } from '../build/events.js';
import { pluginObserver } from './events.js';
import { forParsing } from './flags.js';
import { LOGGING_SETTINGS, type CommandId, type SettingId } from '../settings/table.js';

/**
 * A reader that goes away (`buildimage … | head`, a dropped log pipe) makes
 * writes to stdout and stderr fail with EPIPE, which Node raises as an
 * uncaught error: a build would die mid-stage and leave its mounts and zone
 * analog behind. The output is dropped instead; the build finishes or fails
 * as it would have, and cleans up (a --log-file still gets every line).
 */
for (const out of [process.stdout, process.stderr]) out.on('error', () => undefined);

/** oclif's FlagOutput and ArgOutput (not exported by name). */
type Outputs = Record<string, unknown>;

export abstract class BaseCommand extends Command {
  static enableJsonFlag = true;

  /**
   * A second signal, or a stop that outlives its deadline (core/interrupt),
   * ends the command here: the one error line and the signal's exit code.
   */
  override async init(): Promise<void> {
    await super.init();
    onForcedExit((err) => void this.catch(err));
  }

  /** oclif's parse, over flags that read no environment of their own (cli/flags.ts `forParsing`). */
  protected override async parse<F extends Outputs, B extends Outputs, A extends Outputs>(
    options?: Interfaces.Input<F, B, A>,
    argv?: string[],
  ): Promise<Interfaces.ParserOutput<F, B, A>> {
    const o = options ?? (this.ctor as unknown as Interfaces.Input<F, B, A>);
    const input = { args: o.args, strict: o.strict, enableJsonFlag: o.enableJsonFlag, baseFlags: forParsing(o.baseFlags), flags: forParsing(o.flags) };
    return super.parse(input, argv);
  }

  /**
   * The command's settings from its parsed flags (settings/resolve.ts).
   * Logging is set up first, so that the log file gets even a bad-input error.
   */
  protected async settings<C extends CommandId>(command: C, flags: Record<string, unknown>, o: { skip?: SettingId[] } = {}): Promise<Resolved<C>> {
    const logging = (await resolveSettings(command, flags, { only: LOGGING_SETTINGS })) as Resolved<'build'>;
    if (logging['log-file']) await ensureDir(dirname(logging['log-file']), { what: "log file's directory", flag: '--log-file' });
    configureLog({ verbose: logging.verbose, format: logging['log-format'], file: logging['log-file'], command: this.id ?? 'buildimage' });
    const rest = await resolveSettings(command, flags, { skip: [...LOGGING_SETTINGS, ...(o.skip ?? [])] });
    return { ...rest, ...logging };
  }

  /** What a build tells plugins: oclif hook events around every stage (cli/events, docs/plugins.md). */
  protected buildObserver(timeoutMs: number): BuildObserver {
    return pluginObserver(this.config, timeoutMs);
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
    const json = this.logFormatAsked() === 'json';
    const fields = { ...(hint ? { hint } : {}), exitCode: code };
    logToFileOnly('error', json ? message : line, fields);
    await closeLog();
    if (this.jsonEnabled?.()) {
      const report = err instanceof BuildimageError ? err.report : undefined;
      process.stdout.write(JSON.stringify({ ...report, ok: false, error: { message, ...(hint ? { hint } : {}), exitCode: code } }) + '\n');
    } else if (json) {
      // --log-format json: the last line on stderr is a record like the others.
      process.stderr.write(`${jsonRecord('error', message, fields)}\n`);
    } else {
      process.stderr.write(`buildimage: error: ${line}\n`);
    }
    process.exit(code);
  }

  /**
   * The log format, also when the command line failed before the logging
   * settings were read (an unknown flag): then as the words and the
   * environment ask for it.
   */
  private logFormatAsked(): LogFormat {
    const configured = logFormat();
    if (configured) return configured;
    const argv = this.argv ?? [];
    for (const [i, a] of argv.entries()) {
      if (a === '--') break;
      if (a === '--log-format=json' || (a === '--log-format' && argv[i + 1] === 'json')) return 'json';
      if (a.startsWith('--log-format')) return 'human';
    }
    return process.env.BUILDIMAGE_LOG_FORMAT?.trim() === 'json' ? 'json' : 'human';
  }

  protected override async finally(): Promise<void> {
    await closeLog();
  }
}
