/**
 * Path handling inside an image root. Symlinks inside an image are meant to
 * be read with the image root as `/` (as the zone will see them); resolving
 * them on the host could escape into the build machine's own files. Every
 * write into the image goes through these helpers.
 */
import { lstat, lutimes, mkdir, open, readdir, readlink, rm } from 'node:fs/promises';
import { isAbsolute, join, posix, relative, sep } from 'node:path';
import { BuildError } from '../core/errors.js';
import { zoneRoot } from '../core/layout.js';

const MAX_LINKS = 40;

/**
 * Directories of an image root that the build writes or mounts through and
 * that a zone image never has as links: each must be a real directory in
 * the dataset (or absent). A link there would aim the build at the host.
 */
export const IMAGE_ROOT_DIRS = ['etc', 'var'];

/**
 * Checks that `top` and each component of `rel` below it is a real
 * directory, not a symlink, on `top`'s file system (so inside its dataset:
 * no mount of something else). Returns the path; with `missingOk`, a
 * missing last component is fine (undefined). Throws one line naming the
 * offending path.
 */
export async function realDirIn(top: string, rel = '', opts: { missingOk?: boolean } = {}): Promise<string | undefined> {
  const comps = parts(rel);
  if (comps.includes('..')) throw new BuildError(`refusing a path with "..": ${join(top, rel)}`);
  const topSt = await lstat(top).catch(() => undefined);
  let path = top;
  for (let i = 0; i <= comps.length; i++) {
    if (i > 0) path = join(path, comps[i - 1]);
    const st = i === 0 ? topSt : await lstat(path).catch(() => undefined);
    if (!st) {
      if (opts.missingOk && i === comps.length && i > 0) return undefined;
      throw new BuildError(`${path} does not exist`);
    }
    if (st.isSymbolicLink()) {
      const to = await readlink(path).catch(() => '?');
      throw new BuildError(`${path} is a symlink (to ${to}), not a directory: refusing to write or mount through it`);
    }
    if (!st.isDirectory()) throw new BuildError(`${path} is not a directory`);
    if (st.dev !== topSt!.dev) throw new BuildError(`${path} is on another file system than ${top} (a mount?): refusing to write or mount through it`);
  }
  return path;
}

/**
 * The zone root of the dataset mounted at `mountpoint`, checked before
 * anything is written or mounted in it: `root/` a real directory in the
 * dataset, and so each of IMAGE_ROOT_DIRS and `also` (e.g. the chroot's
 * mountpoints) when present.
 */
export async function checkImageRoot(mountpoint: string, also: readonly string[] = []): Promise<string> {
  const root = zoneRoot(mountpoint);
  const st = await lstat(root).catch(() => undefined);
  if (!st) throw new BuildError(`${root} does not exist: not a zone dataset image`);
  await realDirIn(mountpoint, 'root');
  for (const dir of [...IMAGE_ROOT_DIRS, ...also]) await realDirIn(root, dir, { missingOk: true });
  return root;
}

function parts(p: string): string[] {
  return p.split('/').filter((c) => c && c !== '.');
}

/**
 * Resolves `relPath` under `root`, following symlinks as if `root` were `/`.
 * The result always lies under `root`; missing components are joined as
 * they are, and a `..` after one goes back over it.
 */
export async function resolveInRoot(root: string, relPath: string): Promise<string> {
  // Everything below is re-rooted at `root`; `root` itself must be no link.
  await realDirIn(root);
  const rootDev = (await lstat(root)).dev;
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
      // Missing: kept as it is. A later `..` climbs back over it (as `mkdir -p` then the write would),
      // to where the components after it are looked at, and followed, again.
      done.push(comp);
      continue;
    }
    // A mount inside the root (the chroot's host dirs) is the host's, not the image's.
    if (st.dev !== rootDev) throw new BuildError(`${here} is on another file system than the image root (a mount?): refusing to go through it`);
    if (st.isSymbolicLink()) {
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

/** True when `p` is `root` or below it (lexically; a name below it may begin with `..`, as in `..data`). */
export function isUnder(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
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

/**
 * SOURCE_DATE_EPOCH: every entry of the image root (the root itself
 * included) whose access or modification time is later than `epochSeconds`
 * gets that time instead. lutimes, so a link's own times are set and its
 * target is never touched; no directory on another file system (a mount) is
 * entered or changed. Returns how many entries were clamped.
 */
export async function clampTimes(root: string, epochSeconds: number): Promise<number> {
  await realDirIn(root);
  const limitMs = epochSeconds * 1000;
  const epoch = new Date(limitMs);
  const top = Buffer.from(root);
  const dev = (await lstat(top)).dev;
  let clamped = 0;
  const visit = async (p: Buffer): Promise<void> => {
    const st = await lstat(p);
    if (st.dev !== dev) throw new BuildError(`${p.toString()} is on another file system than the image root (a mount?): not clamping times through it`);
    // A directory after its entries: reading it moves its access time.
    if (st.isDirectory()) for (const name of await readdir(p, { encoding: 'buffer' })) await visit(Buffer.concat([p, Buffer.from('/'), name]));
    const now = st.isDirectory() ? await lstat(p) : st;
    if (now.mtimeMs > limitMs || now.atimeMs > limitMs) {
      await lutimes(p, now.atimeMs > limitMs ? epoch : now.atime, now.mtimeMs > limitMs ? epoch : now.mtime);
      clamped++;
    }
  };
  await visit(top);
  return clamped;
}
