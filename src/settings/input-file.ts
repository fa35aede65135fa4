/**
 * Files the user names as input (`-m @FILE`, the build definition file):
 * read whole and once, only when a regular file (the open does not block on
 * a FIFO, a device or directory is refused), up to a size, and never echoed
 * into a message: buildimage runs as root, and a link in a workspace may
 * point at anything root can read.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { UsageError } from '../core/errors.js';

/**
 * The file's text; `what` names it in messages ("-m file manifest.json",
 * "--config buildimage.json"). `noFollow`: a symbolic link is refused too
 * (a file buildimage itself writes, such as the lockfile, is never a link).
 */
export function readInputFile(path: string, maxBytes: number, what: string, hint?: string, o: { noFollow?: boolean } = {}): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (o.noFollow ? constants.O_NOFOLLOW : 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'ELOOP' && o.noFollow ? 'it is a symbolic link' : (code ?? 'error');
    throw new UsageError(`cannot read ${what}: ${why}`, hint);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UsageError(`cannot read ${what}: not a regular file`, hint);
    if (st.size > maxBytes) throw new UsageError(`${what} is larger than ${maxBytes} bytes`);
    // Read to the end (the size may have changed since fstat), never past the limit.
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    for (let got = -1; got !== 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, null);
    if (n > maxBytes) throw new UsageError(`${what} is larger than ${maxBytes} bytes`);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * JSON text from a file, parsed; a parse error says where (line and
 * column), never what the text was.
 */
export function parseInputJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    // Node says "at position N" for some errors (and quotes the text for others: never shown).
    const at = /at position (\d+)/.exec((err as Error).message);
    const before = at ? text.slice(0, Number(at[1])).split('\n') : undefined;
    const where = before ? ` (line ${before.length}, column ${before[before.length - 1].length + 1})` : text.trim() === '' ? ' (it is empty)' : '';
    throw new UsageError(`${what} is not valid JSON${where}`);
  }
}
