/**
 * Logging. Human lines carry the seconds elapsed since start (as the
 * original tool's timestamps did); `json` emits one object per line.
 * Logs go to stderr so that stdout stays for results (`--json`).
 */
import winston from 'winston';

export type LogFormat = 'human' | 'json';

const started = Date.now();

function elapsed(): string {
  return ((Date.now() - started) / 1000).toFixed(1).padStart(6);
}

const human = winston.format.printf((info) => {
  const level = info.level === 'info' ? '' : `${String(info.level).toUpperCase()}: `;
  return `[${elapsed()}s] ${level}${String(info.message)}`;
});

export const log = winston.createLogger({
  level: process.env.BUILDIMAGE_LOG_LEVEL ?? 'info',
  format: human,
  transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'verbose', 'debug'] })],
});

export function configureLog(opts: { verbose?: boolean; quiet?: boolean; format?: LogFormat; file?: string }): void {
  log.level = opts.quiet ? 'warn' : opts.verbose ? 'debug' : 'info';
  const format =
    opts.format === 'json'
      ? winston.format.combine(winston.format.timestamp(), winston.format.json())
      : human;
  log.format = format;
  if (opts.file) {
    log.add(new winston.transports.File({ filename: opts.file, format }));
  }
}
