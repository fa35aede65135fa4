/**
 * The image root's sizes, read as hostile: lstat only (no link followed,
 * never out of the root), bounded in entries and depth. Sizes are apparent
 * bytes of regular files; each directory's is everything below it.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export const LIMITS = { entries: 2_000_000, depth: 64, shownDepth: 3, top: 25 };

/** Kept between the hook that measures (seal begins) and the one that writes (build done), per build. */
export const measured = new Map();

export async function measure(root) {
  const dirs = new Map();
  let entries = 0;
  let cut = false;
  const walk = async (dir, rel, depth) => {
    let total = 0;
    let names;
    try {
      names = await readdir(dir);
    } catch {
      return 0;
    }
    for (const name of names) {
      if (++entries > LIMITS.entries) {
        cut = true;
        break;
      }
      const path = join(dir, name);
      const st = await lstat(path).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) {
        if (depth >= LIMITS.depth) {
          cut = true;
          continue;
        }
        total += await walk(path, rel === '/' ? `/${name}` : `${rel}/${name}`, depth + 1);
      } else if (st.isFile()) {
        total += st.size;
      }
    }
    if (depth <= LIMITS.shownDepth) dirs.set(rel, total);
    return total;
  };
  const total = await walk(root, '/', 0);
  return { total, entries, cut, dirs };
}

export function render(m, title) {
  const top = [...m.dirs.entries()].filter(([d]) => d !== '/').sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, LIMITS.top);
  const width = String(m.total).length;
  return [
    `# ${title}: largest directories (bytes, everything below each)`,
    `${String(m.total).padStart(width)}  / (${m.entries} entries${m.cut ? ', walk cut at its bounds' : ''})`,
    ...top.map(([d, n]) => `${String(n).padStart(width)}  ${d}`),
    '',
  ].join('\n');
}
