/**
 * The few error classes buildimage uses. Each carries an exit code and a
 * one-line message (plus an optional hint); only the command layer turns
 * them into output, so library code never prints errors itself.
 */

export const ExitCode = {
  OK: 0,
  BUILD_FAILED: 1,
  USAGE: 2,
  PUBLISH_FAILED: 3,
  /** `verify`: the image or its provenance does not check out. */
  VERIFY_FAILED: 4,
  SIGHUP: 129,
  SIGINT: 130,
  SIGTERM: 143,
} as const;

export class BuildimageError extends Error {
  readonly exitCode: number;
  readonly hint?: string;
  /** What --json prints beside the error (a multi-image build: every image's outcome). */
  readonly report?: Record<string, unknown>;
  constructor(message: string, opts: { exitCode?: number; hint?: string; cause?: unknown; report?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = opts.exitCode ?? ExitCode.BUILD_FAILED;
    this.hint = opts.hint;
    this.report = opts.report;
  }
}

/** Bad flags, bad manifest JSON, bad package names, bad paths: the caller's input. */
export class UsageError extends BuildimageError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.USAGE, hint });
  }
}

/** A build step failed (a command, ZFS, a checksum...). */
export class BuildError extends BuildimageError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, { exitCode: ExitCode.BUILD_FAILED, ...opts });
  }
}

/** Publishing (Manta upload, pointers, updates import) failed or was refused. */
export class PublishError extends BuildimageError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, { exitCode: ExitCode.PUBLISH_FAILED, ...opts });
  }
}

/** `verify`: the image does not match its provenance, or the provenance is not signed by the key given. */
export class VerifyError extends BuildimageError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.VERIFY_FAILED, hint });
  }
}

/** Stages run out of order, or a state file that does not fit. */
export class StateError extends BuildimageError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.USAGE, hint });
  }
}

/** SIGINT/SIGTERM/SIGHUP arrived; the work was stopped and cleaned up (or, with `detail`, exited before that). */
export class InterruptedError extends BuildimageError {
  readonly signal: NodeJS.Signals;
  /** `reason`: the whole message, when the stop was asked for by other than a signal (build --fail-fast). */
  constructor(signal: NodeJS.Signals, o: { detail?: string; hint?: string; reason?: string } = {}) {
    super(o.reason ?? `interrupted by ${signal}${o.detail ? ` (${o.detail})` : ''}`, {
      exitCode: signal === 'SIGINT' ? ExitCode.SIGINT : signal === 'SIGHUP' ? ExitCode.SIGHUP : ExitCode.SIGTERM,
      hint: o.hint,
    });
    this.signal = signal;
  }
}

/** Message of any thrown value, on one line. */
export function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/\s*\n\s*/g, ' ').trim();
}

/** A value from outside (a server's JSON, a query) as text: a string as it is, anything else as JSON. */
export function asText(x: unknown): string {
  return typeof x === 'string' ? x : (JSON.stringify(x) ?? typeof x);
}
