/** A comparable description of a directory tree: type, mode, owner, link target, content hash. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export type TreeEntry = string;

async function hashFile(p: string): Promise<string> {
  const h = createHash('sha1');
  for await (const chunk of createReadStream(p)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Map of relative path → "type mode uid:gid detail" (no times: they differ between runs). */
export async function describeTree(top: string, opts: { skip?: (rel: string) => boolean } = {}): Promise<Map<string, TreeEntry>> {
  const out = new Map<string, TreeEntry>();
  async function walk(dir: string, rel: string): Promise<void> {
    for (const name of (await readdir(dir)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (opts.skip?.(r)) continue;
      const p = join(dir, name);
      const st = await lstat(p);
      const meta = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isSymbolicLink()) out.set(r, `link ${meta} -> ${await readlink(p)}`);
      else if (st.isDirectory()) {
        out.set(r, `dir ${meta}`);
        await walk(p, r);
      } else if (st.isFile()) out.set(r, `file ${meta} ${st.size} ${await hashFile(p)}`);
      else out.set(r, `other ${meta}`);
    }
  }
  await walk(top, '');
  return out;
}

/** Human-readable differences (at most `max`). */
export function diffTrees(a: Map<string, TreeEntry>, b: Map<string, TreeEntry>, max = 20): string[] {
  const diffs: string[] = [];
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(k);
    const y = b.get(k);
    if (x !== y) diffs.push(`${k}: ${x ?? '(missing)'} != ${y ?? '(missing)'}`);
    if (diffs.length >= max) break;
  }
  return diffs;
}
