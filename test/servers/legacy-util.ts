/**
 * The official Joyent libraries the tests use as oracles (smartdc-auth and
 * its `clone`, node-manta) call `util.isDate` and its siblings, which Node 23
 * removed. On Node 23 and later they are put back with Node 22's meaning,
 * for those oracles only: the product never calls them (CI runs the unit
 * tests under Node 22 and 24, scripts/node-runtimes.sh).
 */
import { createRequire } from 'node:module';

const util = createRequire(import.meta.url)('node:util') as Record<string, unknown>;
const legacy: Record<string, (v: unknown) => boolean> = {
  isBoolean: (v) => typeof v === 'boolean',
  isBuffer: (v) => Buffer.isBuffer(v),
  isDate: (v) => v instanceof Date,
  isError: (v) => v instanceof Error,
  isFunction: (v) => typeof v === 'function',
  isNull: (v) => v === null,
  isNullOrUndefined: (v) => v === null || v === undefined,
  isNumber: (v) => typeof v === 'number',
  isObject: (v) => v !== null && typeof v === 'object',
  isPrimitive: (v) => v === null || (typeof v !== 'object' && typeof v !== 'function'),
  isRegExp: (v) => v instanceof RegExp,
  isString: (v) => typeof v === 'string',
  isSymbol: (v) => typeof v === 'symbol',
  isUndefined: (v) => v === undefined,
};
for (const [name, fn] of Object.entries(legacy)) if (typeof util[name] !== 'function') util[name] = fn;
