/**
 * Logging. Human lines carry the seconds elapsed since start (as the
 * original tool's timestamps did); `json` emits one object per line with
 * the time, elapsed seconds, level, message and any fields (progress).
 * Logs go to stderr so that stdout stays for results (`--json`). A log
 * file (--log-file) always gets the verbose detail, child output included,
 * so Jenkins can archive it while the console stays readable. Several
 * commands (the discrete stages) append to one file: each starts its part
 * with a header line (time, command, version, build id when known), and
 * every line there carries the wall-clock time, so the parts line up.
 *
 * One "live line" (a TTY progress line, see progress.ts) may sit at the
 * bottom of stderr: log lines are written above it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createWriteStream, type WriteStream } from 'node:fs';
import { envSwitch } from './env.js';
import { toolVersion } from './package.js';
import winston from 'winston';

export type LogFormat = 'human' | 'json';

const MESSAGE = Symbol.for('message');
const started = Date.now();

export function elapsedSeconds(now = Date.now()): number {
  return (now - started) / 1000;
}

// ---- whose line: one of several builds in this process (build --jobs N)

/** What every line logged inside `withLogContext` carries: the image whose build logs it. */
export interface LogContext {
  image: string;
  /** Several builds at once: no live line (they would overwrite each other's). */
  noLive?: boolean;
}

const contexts = new AsyncLocalStorage<LogContext>();

/** Runs `fn` with every line it logs (child output and progress included) naming `ctx.image`. */
export function withLogContext<T>(ctx: LogContext, fn: () => Promise<T>): Promise<T> {
  return contexts.run(ctx, fn);
}

/** Takes the image from the context when the line is made (the caller's async context), as a field. */
const addContext = winston.format((info) => {
  const image = contexts.getStore()?.image;
  if (image !== undefined && info.image === undefined) info.image = image;
  return info;
});

/** `api: ` before a line of image api's build. */
function whose(info: winston.Logform.TransformableInfo): string {
  return typeof info.image === 'string' ? `${info.image}: ` : '';
}

/** `[  12.3s] message`, with WARN:/ERROR: for those levels; info and debug untagged; the image first in a multi-image build. */
export const humanFormat = winston.format.printf((info) => {
  const tag = info.level === 'warn' || info.level === 'error' ? `${info.level.toUpperCase()}: ` : '';
  return `[${elapsedSeconds().toFixed(1).padStart(6)}s] ${whose(info)}${tag}${String(info.message)}`;
});

/** The log file's human line: the wall-clock time first, then the line stderr shows. */
export const humanFileFormat = winston.format.printf((info) => {
  const tag = info.level === 'warn' || info.level === 'error' ? `${info.level.toUpperCase()}: ` : '';
  return `${new Date().toISOString()} [${elapsedSeconds().toFixed(1).padStart(6)}s] ${whose(info)}${tag}${String(info.message)}`;
});

/** One JSON log record: time, elapsed, level, message, then any fields. */
export function jsonRecord(level: string, message: string, fields: Record<string, unknown> = {}): string {
  return JSON.stringify({ time: new Date().toISOString(), elapsed: Number(elapsedSeconds().toFixed(3)), level, message, ...fields });
}

/** One JSON object per line: time, elapsed, level, message, then any fields given with the message. */
export const jsonFormat = winston.format.printf((info) => {
  const { level, message, ...fields } = info;
  return jsonRecord(level, String(message), fields);
});

// ---- the live line (TTY only)

let live: string | undefined;

function clearLive(): void {
  if (live !== undefined) process.stderr.write('\r\x1b[K');
}

function drawLive(): void {
  if (live === undefined) return;
  const cols = process.stderr.columns || 100;
  process.stderr.write(live.length >= cols ? `${live.slice(0, cols - 2)}…` : live);
}

/** Shows (or with undefined, removes) the self-overwriting line at the bottom of a TTY stderr. */
export function setLiveLine(text: string | undefined): void {
  clearLive();
  live = text;
  drawLive();
}

/** Console transport that keeps the live line below the log lines. */
class ConsoleAboveLive extends winston.transports.Console {
  override log(info: unknown, next: () => void): void {
    clearLive();
    super.log!(info, () => undefined);
    drawLive();
    next();
  }
}

// ---- the logger

/** The console's level without -v: BUILDIMAGE_LOG_LEVEL (e.g. warn, debug), else info. */
function defaultLevel(): string {
  const level = process.env.BUILDIMAGE_LOG_LEVEL?.trim().toLowerCase();
  // An unknown level would silence every line, warnings and errors included: info then.
  return level && Object.hasOwn(winston.config.npm.levels, level) ? level : 'info';
}

const consoleTransport = new ConsoleAboveLive({ stderrLevels: ['error', 'warn', 'info', 'verbose', 'debug'] });

export const log = winston.createLogger({
  level: defaultLevel(),
  format: winston.format.combine(addContext(), humanFormat),
  transports: [consoleTransport],
});

interface LogFile {
  path: string;
  stream: WriteStream;
  transport: winston.transport;
  command: string;
  /** When the file was opened: the header's time, before any line's. */
  opened: Date;
  /** Written before the file's first line of this process. */
  headerDone: boolean;
}

let current: { format: LogFormat; configured: boolean; file?: LogFile } = { format: 'human', configured: false };
let buildId: string | undefined;

/** The format configureLog set; undefined before it ran (a command line that did not parse). */
export function logFormat(): LogFormat | undefined {
  return current.configured ? current.format : undefined;
}

function writeHeader(f: LogFile): void {
  if (f.headerDone) return;
  f.headerDone = true;
  const text = `buildimage ${toolVersion()} ${f.command}`;
  const fields = { header: true, command: f.command, version: toolVersion(), pid: process.pid, ...(buildId ? { buildId } : {}) };
  const time = f.opened.toISOString();
  f.stream.write(
    current.format === 'json'
      ? `${JSON.stringify({ time, elapsed: Number(elapsedSeconds(f.opened.getTime()).toFixed(3)), level: 'info', message: text, ...fields })}\n`
      : `${time} === ${text} (${buildId ? `build ${buildId}, ` : ''}pid ${process.pid}) ===\n`,
  );
}

/**
 * The build this process works on, for the log file's header; once the
 * header is out (something was logged before the id was known), a line
 * naming it instead.
 */
export function setLogBuildId(id: string): void {
  if (buildId === id) return;
  buildId = id;
  const f = current.file;
  if (f?.headerDone) logToFileOnly('info', `build ${id}`, { buildId: id });
}

/** The log file's transport: the header goes first, before the first line. */
class FileTransport extends winston.transports.Stream {
  constructor(
    private readonly file: () => LogFile | undefined,
    opts: winston.transports.StreamTransportOptions,
  ) {
    super(opts);
  }

  override log(info: unknown, next: () => void): void {
    const f = this.file();
    if (f) writeHeader(f);
    super.log!(info, next);
  }
}

/** BUILDIMAGE_NO_LIVE, read as every switch; a bad value is reported by checkEnvSwitches, here it means "no live line". */
function noLive(): boolean {
  try {
    return envSwitch('BUILDIMAGE_NO_LIVE');
  } catch {
    return true;
  }
}

/** Whether progress may draw a live line: a TTY stderr and human logs. */
export function liveLineAllowed(): boolean {
  return current.format === 'human' && !!process.stderr.isTTY && !consoleTransport.silent && !noLive() && !contexts.getStore()?.noLive;
}

/** `command` names the command in the log file's header. */
export function configureLog(opts: { verbose?: boolean; quiet?: boolean; format?: LogFormat; file?: string; command?: string }): void {
  const format = opts.format === 'json' ? 'json' : 'human';
  const fmt = format === 'json' ? jsonFormat : humanFormat;
  consoleTransport.level = opts.quiet ? 'warn' : opts.verbose ? 'debug' : defaultLevel();
  consoleTransport.format = fmt;
  // The logger passes everything; each transport filters by its own level.
  log.level = 'debug';
  if (current.file) {
    log.remove(current.file.transport);
    current.file.stream.end();
  }
  current = { format, configured: true };
  if (opts.file) {
    // Its directory is made by the caller (cli/base, with core/files' bounded ensureDir).
    const stream = createWriteStream(opts.file, { flags: 'a' });
    stream.on('error', (err) => {
      // A log file that cannot be written must not take the build down with it.
      process.stderr.write(`buildimage: warning: log file ${opts.file}: ${err.message}\n`);
    });
    // Unlike stderr, every line of the file carries the wall-clock time (JSON records always do).
    const transport = new FileTransport(() => current.file, { stream, level: 'debug', format: format === 'json' ? jsonFormat : humanFileFormat });
    log.add(transport);
    current.file = { path: opts.file, stream, transport, command: opts.command ?? 'buildimage', opened: new Date(), headerDone: false };
  }
}

/** Writes a line to the log file only (e.g. the final error, which stderr already shows); fields show in JSON records. */
export function logToFileOnly(level: 'error' | 'warn' | 'info', message: string, fields: Record<string, unknown> = {}): void {
  const f = current.file;
  if (!f) return;
  writeHeader(f);
  const image = contexts.getStore()?.image;
  const info = { level, message, ...(image !== undefined ? { image } : {}), ...fields } as winston.Logform.TransformableInfo & { [MESSAGE]?: string };
  const out = (f.transport.format ?? humanFileFormat).transform(info);
  if (out && typeof out === 'object') f.stream.write(`${(out as { [MESSAGE]?: string })[MESSAGE]}\n`);
}

/** Flushes and closes the log file; call before process.exit. */
export async function closeLog(): Promise<void> {
  setLiveLine(undefined);
  const f = current.file;
  if (!f) return;
  // A command that logged nothing still leaves its header: every call is in the file.
  writeHeader(f);
  log.remove(f.transport);
  current.file = undefined;
  await new Promise<void>((resolve) => {
    f.stream.end(() => resolve());
    f.stream.once('error', () => resolve());
  });
}
