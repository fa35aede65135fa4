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
