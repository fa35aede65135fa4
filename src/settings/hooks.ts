/**
 * Stage hooks as the build definition names them: commands run on the host
 * before or after a stage (`"hooks": {"after.assemble": ["./check"]}` in
 * buildimage.json, `--hook after.assemble='["./check","3"]'` on the command
 * line). Each is an argv (no shell unless the user writes one), checked
 * here as the untrusted text it is: known event, a list of strings, no NUL,
 * bounded. Running them is build/hooks.ts.
 *
 * A hook is as trusted as the definition it comes from: its program may be
 * anywhere (`../tools/lint` is allowed). What must never happen is a hook
 * from anywhere else (an image, a server, a state file: build/hooks checks
 * a discrete stage's hooks against the digest prepare put on the analog).
 */
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { UsageError } from '../core/errors.js';

/** The stages a hook may surround, in order (build/state STAGES; build/hooks checks the two agree). */
export const HOOK_STAGES = ['prepare', 'assemble', 'pkgadd', 'seal'] as const;
export const HOOK_WHEN = ['before', 'after'] as const;
export type HookEvent = `${(typeof HOOK_WHEN)[number]}.${(typeof HOOK_STAGES)[number]}`;
export const HOOK_EVENTS = HOOK_STAGES.flatMap((s) => HOOK_WHEN.map((w) => `${w}.${s}`));

/** Bounds on what a definition may ask: a hook is a command line, not a payload. */
export const HOOK_LIMITS = { hooks: 64, args: 256, argBytes: 64 * 1024, argvBytes: 256 * 1024 } as const;

export const HookSchema = z.object({
  event: z.enum(HOOK_EVENTS as [HookEvent, ...HookEvent[]]),
  /** As written: a program with a "/" is relative to `cwd`; a bare name is looked up in PATH. */
  argv: z.array(z.string()).min(1),
  /** The definition file's directory (the current directory for --hook). */
  cwd: z.string(),
});
export type Hook = z.infer<typeof HookSchema>;

/** How messages name a hook: `after.assemble hook ["./check-size"]` (long argvs shortened). */
export function hookName(h: Pick<Hook, 'event' | 'argv'>): string {
  const shown = JSON.stringify(h.argv);
  return `${h.event} hook ${shown.length > 120 ? `${shown.slice(0, 117)}...` : shown}`;
}

function checkArgv(argv: unknown, label: string): string[] {
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string')) {
    throw new UsageError(`${label}: a hook is a non-empty list of strings (an argv, e.g. ["./check-size", "100M"])`);
  }
  if (argv.length > HOOK_LIMITS.args) throw new UsageError(`${label}: a hook may have ${HOOK_LIMITS.args} arguments, this one has ${argv.length}`);
  let total = 0;
  for (const a of argv) {
    if (a.includes('\0')) throw new UsageError(`${label}: a hook's argument has a NUL character`);
    const n = Buffer.byteLength(a);
    if (n > HOOK_LIMITS.argBytes) throw new UsageError(`${label}: a hook's argument is longer than ${HOOK_LIMITS.argBytes} bytes`);
    total += n;
  }
  if (total > HOOK_LIMITS.argvBytes) throw new UsageError(`${label}: a hook's arguments are longer than ${HOOK_LIMITS.argvBytes} bytes together`);
  if ((argv)[0] === '') throw new UsageError(`${label}: a hook's program is empty`);
  return argv;
}

function checkEvent(event: string, label: string): HookEvent {
  if (!(HOOK_EVENTS).includes(event)) {
    throw new UsageError(`${label}: ${JSON.stringify(event.slice(0, 40))} is not a hook event (${HOOK_EVENTS.join(', ')})`);
  }
  return event as HookEvent;
}

/**
 * `--hook` text: `EVENT=PROGRAM` or `EVENT=["PROGRAM","ARG",...]`, relative
 * to the current directory; or, as buildimage.json's entries become text
 * (`hookTexts`), `{"event":…,"argv":[…],"cwd":DIR}`.
 */
export function parseHookArg(text: string, label: string): Hook[] {
  if (text.length > HOOK_LIMITS.argvBytes * 2) throw new UsageError(`${label}: longer than ${HOOK_LIMITS.argvBytes * 2} characters`);
  if (text.trimStart().startsWith('{')) {
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch {
      throw new UsageError(`${label}: not JSON`);
    }
    const r = z.object({ event: z.string(), argv: z.unknown(), cwd: z.string() }).strict().safeParse(o);
    if (!r.success || !isAbsolute(r.data.cwd)) throw new UsageError(`${label}: expected {"event", "argv", "cwd" (absolute)}`);
    return [{ event: checkEvent(r.data.event, label), argv: checkArgv(r.data.argv, label), cwd: r.data.cwd }];
  }
  const eq = text.indexOf('=');
  if (eq < 0) throw new UsageError(`${label} takes EVENT=PROGRAM or EVENT='["PROGRAM","ARG"]', got ${JSON.stringify(text.slice(0, 40))}`, `e.g. ${label} after.assemble=./check or ${label} 'before.seal=["./size-budget","200M"]'`);
  const event = checkEvent(text.slice(0, eq), label);
  const rest = text.slice(eq + 1);
  let argv: unknown = [rest];
  if (rest.trimStart().startsWith('[')) {
    try {
      argv = JSON.parse(rest);
    } catch {
      throw new UsageError(`${label}: ${event}'s argv is not a JSON list of strings`);
    }
  }
  return [{ event, argv: checkArgv(argv, label), cwd: process.cwd() }];
}

/** buildimage.json's `"hooks"`: `{EVENT: argv | [argv, ...]}`. */
export const HooksConfigSchema = z.record(z.array(z.unknown()));
export type HooksConfig = z.infer<typeof HooksConfigSchema>;

/** The file's hooks as texts `parseHookArg` reads, each with the file's directory as its cwd. */
export function hookTexts(v: HooksConfig, dir: string): string[] {
  const out: string[] = [];
  for (const [event, value] of Object.entries(v)) {
    // A list of lists is several hooks; anything else is one argv (checked as one when parsed).
    const argvs = value.length > 0 && value.every((x) => Array.isArray(x)) ? value : [value];
    for (const argv of argvs) out.push(JSON.stringify({ event, argv, cwd: resolve(dir) }));
  }
  if (out.length > HOOK_LIMITS.hooks) throw new UsageError(`hooks: at most ${HOOK_LIMITS.hooks} hooks, got ${out.length}`);
  return out;
}

/** The whole list (file's, then the command line's), bounded. */
export function checkHookCount(hooks: Hook[], label: string): Hook[] {
  if (hooks.length > HOOK_LIMITS.hooks) throw new UsageError(`${label}: at most ${HOOK_LIMITS.hooks} hooks, got ${hooks.length}`);
  return hooks;
}
