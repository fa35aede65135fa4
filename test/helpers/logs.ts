/** Captures everything the logger writes (debug included) while a test runs. */
import { Writable } from 'node:stream';
import winston from 'winston';
import { log } from '../../src/core/log.js';

export function captureLogs(): { lines: string[]; stop(): void } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _e, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const t = new winston.transports.Stream({ stream, level: 'debug' });
  const level = log.level;
  log.level = 'debug';
  log.add(t);
  return {
    lines,
    stop() {
      log.remove(t);
      log.level = level;
    },
  };
}

/** Captures log records (message and fields) while silencing the console. */
export function captureRecords(): { infos: Array<Record<string, unknown>>; stop(): void } {
  const infos: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    objectMode: true,
    write(chunk, _e, cb) {
      infos.push(chunk as Record<string, unknown>);
      cb();
    },
  });
  const t = new winston.transports.Stream({ stream, level: 'debug' });
  const consoles = log.transports.filter((x) => x instanceof winston.transports.Console);
  consoles.forEach((c) => (c.silent = true));
  log.add(t);
  return {
    infos,
    stop() {
      log.remove(t);
      consoles.forEach((c) => (c.silent = false));
    },
  };
}
