/**
 * Every child process goes through here: argv only (never a shell),
 * a timeout, cancellation on interrupt, and errors that name the command
 * with the last line of its stderr.
 */
import { execa, type ResultPromise } from 'execa';
import { BuildError, InterruptedError } from '../core/errors.js';
import { cancelSignalForNewWork, interruptedBy } from '../core/interrupt.js';
import { log } from '../core/log.js';

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Replace the environment instead of extending process.env. */
  cleanEnv?: boolean;
  input?: string;
  /** Milliseconds; default the step timeout (30 minutes, --timeout) for `run`, none for `spawn`. 0 disables. */
  timeoutMs?: number;
  /** Exit codes that count as success (default [0]). */
  okExitCodes?: number[];
  /**
   * Stream the child's output lines to the debug log (-v) as they come; a
   * function also gets each line (progress).
   */
  echo?: boolean | ((line: string) => void);
  /** Cleanup steps must finish even after an interruption. */
  uninterruptible?: boolean;
  /**
   * Called when the child itself has exited, before its output streams
   * close: a grandchild that inherited them (a package's @exec) would
   * otherwise hold the step open until it ends.
   */
  onChildExit?: () => Promise<unknown> | void;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;

let defaultTimeoutMs = DEFAULT_TIMEOUT_MS;

/** The timeout of every step that does not set its own (--timeout). */
export function setDefaultTimeout(ms: number): void {
  defaultTimeoutMs = ms;
}

/** Interruptible unless cleanup: see cancelSignalForNewWork. */
function cancelSignalFor(opts: RunOptions): AbortSignal | undefined {
  return opts.uninterruptible ? undefined : cancelSignalForNewWork();
}

export function describeCommand(cmd: string, args: readonly string[]): string {
  const shown = [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a)));
  const text = shown.join(' ');
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}

/** The last two stderr lines: tools often print the cause, then a summary. */
function lastLines(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.slice(-2).join('; ');
}

/**
 * Start a child; the caller owns its streams. Used for pipelines (send,
 * receive, their compressors), which get no total timeout unless they ask:
 * a big or slow stream is not a stuck one, and the caller watches for a
 * stream that stops moving instead (image/streams' STREAM_STALL_MS).
 */
export function spawn(
  cmd: string,
  args: readonly string[],
  opts: RunOptions & { stdin?: 'pipe' | 'ignore'; stdout?: 'pipe' | 'ignore' } = {},
): ResultPromise<{ reject: false; buffer: { stdout: false; stderr: true }; stripFinalNewline: false }> {
  log.debug(`exec: ${describeCommand(cmd, args)}`);
  return execa(cmd, args, {
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: !opts.cleanEnv,
    reject: false,
    stdin: opts.stdin ?? 'pipe',
    stdout: opts.stdout ?? 'pipe',
    stderr: 'pipe',
    buffer: { stdout: false, stderr: true },
    stripFinalNewline: false,
    timeout: opts.timeoutMs ?? 0,
    cancelSignal: cancelSignalFor(opts),
    forceKillAfterDelay: 5000,
  } as const) as never;
}

/** Throws BuildError (or InterruptedError) unless the child exited with an accepted code. */
export function checkExit(
  cmd: string,
  args: readonly string[],
  result: { exitCode?: number; timedOut?: boolean; isCanceled?: boolean; signal?: string; stderr?: unknown; failed?: boolean; code?: string; originalMessage?: string },
  opts: { timeoutMs?: number; okExitCodes?: number[] } = {},
): void {
  const what = describeCommand(cmd, args);
  const signal = interruptedBy();
  if (result.isCanceled && signal) throw new InterruptedError(signal);
  if (result.timedOut) {
    throw new BuildError(`timed out after ${Math.round((opts.timeoutMs ?? defaultTimeoutMs) / 1000)}s: ${what}`, {
      hint: 'raise --timeout if the step is just slow',
    });
  }
  if (result.code === 'ENOENT') {
    throw new BuildError(`command not found: ${cmd}`, { hint: 'install it or fix PATH' });
  }
  const ok = opts.okExitCodes ?? [0];
  if (result.exitCode === undefined || !ok.includes(result.exitCode)) {
    const detail = lastLines(typeof result.stderr === 'string' ? result.stderr : '') || result.originalMessage || '';
    const how = result.signal ? `killed by ${result.signal}` : `exit ${result.exitCode}`;
    throw new BuildError(`${what} failed (${how})${detail ? `: ${detail}` : ''}`);
  }
}

export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  log.debug(`exec: ${describeCommand(cmd, args)}`);
  const child = execa(cmd, args, {
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: !opts.cleanEnv,
    input: opts.input,
    stdin: opts.input === undefined ? 'ignore' : undefined,
    reject: false,
    timeout: opts.timeoutMs ?? defaultTimeoutMs,
    cancelSignal: cancelSignalFor(opts),
    forceKillAfterDelay: 5000,
    stripFinalNewline: false,
    maxBuffer: 64 * 1024 * 1024,
  });
  let afterExit: Promise<unknown> = Promise.resolve();
  if (opts.onChildExit) {
    const onExit = opts.onChildExit;
    afterExit = new Promise((resolve) => {
      child.on('exit', () => resolve(Promise.resolve(onExit()).catch((err) => log.warn(`after ${cmd}: ${(err as Error).message}`))));
    });
  }
  if (opts.echo) {
    for (const stream of [child.stdout, child.stderr]) {
      let pending = '';
      stream?.on('data', (chunk: Buffer) => {
        const lines = (pending + chunk.toString()).split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          log.debug(`  | ${line}`);
          if (typeof opts.echo === 'function') opts.echo(line);
        }
      });
    }
  }
  const result = await child;
  // The hook must be done before the caller starts its next command.
  await afterExit;
  checkExit(cmd, args, result, opts);
  return { stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? ''), exitCode: result.exitCode ?? 0 };
}

export interface LinesOptions {
  cwd: string;
  /** The whole environment: nothing of this process's is passed on. */
  env: Record<string, string>;
  /** Milliseconds; 0 disables. */
  timeoutMs: number;
  /** Each output line, as it comes, without its newline; a longer one is cut here (and marked). */
  onLine: (line: string) => void;
  maxLineBytes?: number;
  /** After this much output, the rest is read and dropped (one line says so). */
  maxBytes?: number;
}

export interface LinesResult {
  exitCode?: number;
  signal?: string;
  timedOut: boolean;
  /** The program could not be started (ENOENT, EACCES): the reason. */
  notStarted?: string;
}

/** Splits a stream into bounded lines: memory follows maxLineBytes, never the stream. */
function lineSplitter(maxLine: number, maxBytes: number, onLine: (l: string) => void): { push(chunk: Buffer): void; end(): void } {
  let parts: Buffer[] = [];
  let held = 0;
  let cut = false;
  let total = 0;
  let over = false;
  const emit = (text: string) => {
    if (over) return;
    total += text.length;
    if (total > maxBytes) {
      over = true;
      onLine(`[more than ${maxBytes} bytes of output: the rest is not logged]`);
      return;
    }
    onLine(text);
  };
  const flush = () => {
    const line = Buffer.concat(parts).toString('utf8');
    parts = [];
    held = 0;
    return line;
  };
  return {
    push(chunk: Buffer) {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(10, start);
        const piece = chunk.subarray(start, nl < 0 ? chunk.length : nl);
        if (!cut) {
          const room = maxLine - held;
          if (piece.length > room) {
            parts.push(piece.subarray(0, room));
            emit(`${flush()} [line cut at ${maxLine} bytes]`);
            cut = true;
          } else {
            parts.push(piece);
            held += piece.length;
          }
        }
        if (nl < 0) return;
        if (!cut) emit(flush());
        cut = false;
        start = nl + 1;
      }
    },
    end() {
      if (!cut && held > 0) emit(flush());
    },
  };
}

/**
 * Runs a program the user named (a stage hook) on the host: its own process
 * group, no shell, a clean environment, its output to `onLine` line by line
 * (bounded, never buffered whole), a timeout, cancellation on interrupt. When
 * it exits, whatever it left running in its group is killed: a background
 * child holding the output open must not hold the build.
 */
export async function runLines(cmd: string, args: readonly string[], opts: LinesOptions): Promise<LinesResult> {
  log.debug(`exec: ${describeCommand(cmd, args)}`);
  const child = execa(cmd, args, {
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: false,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    detached: true,
    timeout: opts.timeoutMs,
    cancelSignal: cancelSignalForNewWork(),
    forceKillAfterDelay: 5000,
  });
  const killGroup = () => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // ESRCH: nothing left in the group.
    }
  };
  child.on('exit', killGroup);
  const maxLine = opts.maxLineBytes ?? 8192;
  const maxBytes = opts.maxBytes ?? 16 * 1024 * 1024;
  for (const stream of [child.stdout, child.stderr]) {
    const split = lineSplitter(maxLine, maxBytes, opts.onLine);
    stream?.on('data', (chunk: Buffer) => split.push(chunk));
    stream?.on('end', () => split.end());
  }
  const result = await child;
  killGroup();
  const signal = interruptedBy();
  if (result.isCanceled && signal) throw new InterruptedError(signal);
  if (result.code === 'ENOENT' || result.code === 'EACCES') return { timedOut: false, notStarted: result.code === 'ENOENT' ? 'not found' : 'permission denied' };
  return { exitCode: result.exitCode, signal: result.signal, timedOut: !!result.timedOut };
}
