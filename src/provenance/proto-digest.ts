/**
 * A digest of a proto directory that two checkouts of the same tree share:
 * sha256 over one JSON line per entry, sorted by path,
 * `["path","f"|"d"|"l"|"o",mode,size,"sha256 of content"|"link target"]`
 * (mode: permission bits only; owners and times left out, as a checkout
 * sets them). Nothing is followed: links are recorded by their target,
 * FIFOs and devices ("o") by name only; a bounded number of entries.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { digestFile } from '../core/files.js';

/** Far above any proto (node_modules included); a bigger tree gets no digest rather than a long walk. */
export const MAX_TREE_ENTRIES = 2_000_000;

export class TreeTooLarge extends Error {}

export async function protoTreeDigest(dir: string, maxEntries = MAX_TREE_ENTRIES): Promise<string> {
  const h = createHash('sha256');
  let n = 0;
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(dir, rel))).sort();
    for (const name of names) {
      if (++n > maxEntries) throw new TreeTooLarge(`more than ${maxEntries} entries`);
      const r = rel ? `${rel}/${name}` : name;
      const p = join(dir, r);
      const st = await lstat(p);
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) {
        h.update(JSON.stringify([r, 'd', mode, 0, '']) + '\n');
        await walk(r);
      } else if (st.isSymbolicLink()) {
        h.update(JSON.stringify([r, 'l', mode, 0, await readlink(p)]) + '\n');
      } else if (st.isFile()) {
        const { digests, size } = await digestFile(p, 'sha256');
        h.update(JSON.stringify([r, 'f', mode, size, digests.sha256.toString('hex')]) + '\n');
      } else {
        h.update(JSON.stringify([r, 'o', mode, 0, '']) + '\n');
      }
    }
  };
  await walk('');
  return h.digest('hex');
}
