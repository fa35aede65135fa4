/**
 * Path handling inside an image root. Symlinks inside an image are meant to
 * be read with the image root as `/` (as the zone will see them); resolving
 * them on the host could escape into the build machine's own files. Every
 * write into the image goes through these helpers.
 */
import { lstat, mkdir, open, readlink, rm } from 'node:fs/promises';
import { isAbsolute, join, posix, relative } from 'node:path';
import { BuildError } from '../core/errors.js';

const MAX_LINKS = 40;

function parts(p: string): string[] {
  return p.split('/').filter((c) => c && c !== '.');
}

/**
 * Resolves `relPath` under `root`, following symlinks as if `root` were `/`.
 * With `followLast: false` the last component is not followed (lstat
 * semantics). The result always lies under `root`; missing components are
 * joined as they are.
 */
export async function resolveInRoot(root: string, relPath: string, followLast = true): Promise<string> {
  const todo = parts(relPath);
  const done: string[] = [];
  let links = 0;
  while (todo.length) {
    const comp = todo.shift()!;
    if (comp === '..') {
      done.pop();
      continue;
    }
    const here = join(root, ...done, comp);
    const st = await lstat(here).catch(() => undefined);
    if (!st) {
      // Nothing further exists, so nothing further can be a link.
      return join(root, ...done, comp, ...todo.filter((c) => c !== '..'));
    }
    if (st.isSymbolicLink() && (todo.length > 0 || followLast)) {
      if (++links > MAX_LINKS) throw new BuildError(`too many symlinks resolving /${relPath} in ${root}`);
      const target = await readlink(here);
      if (isAbsolute(target)) done.length = 0;
      todo.unshift(...parts(target));
      continue;
    }
    done.push(comp);
  }
  return join(root, ...done);
}

/** True when `p` is `root` or below it (lexically). */
export function isUnder(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * Writes a regular file at `relPath` inside the image. A symlink at that
 * path is replaced by the file rather than followed.
 */
export async function writeFileInRoot(root: string, relPath: string, content: string, mode = 0o644): Promise<string> {
  const dir = await resolveInRoot(root, posix.dirname(`/${relPath}`));
  const target = join(dir, posix.basename(relPath));
  if (!isUnder(root, target)) throw new BuildError(`refusing to write outside the image root: ${target}`);
  await mkdir(dir, { recursive: true });
  const st = await lstat(target).catch(() => undefined);
  if (st && !st.isFile()) await rm(target, { recursive: true, force: true });
  else if (st) await rm(target);
  const fh = await open(target, 'wx', mode);
  try {
    await fh.writeFile(content);
    await fh.chmod(mode);
  } finally {
    await fh.close();
  }
  return target;
}

/** Removes `relPath` inside the image (a symlink there is removed, not followed). */
export async function removeInRoot(root: string, relPath: string): Promise<boolean> {
  const dir = await resolveInRoot(root, posix.dirname(`/${relPath}`));
  const target = join(dir, posix.basename(relPath));
  if (!isUnder(root, target) || target === root) throw new BuildError(`refusing to remove outside the image root: ${target}`);
  const st = await lstat(target).catch(() => undefined);
  if (!st) return false;
  await rm(target, { recursive: true, force: true });
  return true;
}
