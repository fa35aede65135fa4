/** The human rendering of `buildimage diff`; --json prints the result as it is. */
import type { DiffItem, DiffResult, ListingSummary } from '../contents/diff.js';
import { displayText, type Entry } from '../contents/listing.js';

function describe(e: Entry | undefined): string {
  if (!e) return 'as in its origin';
  if (e.change === 'deleted') return 'deleted';
  const detail = e.type === 'file' ? ` ${e.size} bytes` : e.type === 'symlink' ? ` -> ${displayText(e.target ?? '')}` : '';
  return `${e.type} ${e.mode} ${e.uid}:${e.gid}${detail}`;
}

function changedLine(i: DiffItem): string {
  const a = i.a;
  const b = i.b;
  const parts = (i.what ?? []).map((w) => {
    if (!a || !b) return 'changed in one build only (the other is as in its origin)';
    if (w === 'type') return `${a.type} -> ${b.type}`;
    if (w === 'mode') return `mode ${a.mode} -> ${b.mode}`;
    if (w === 'owner') return `owner ${a.uid}:${a.gid} -> ${b.uid}:${b.gid}`;
    if (b.type === 'symlink') return `target ${displayText(a.target ?? '')} -> ${displayText(b.target ?? '')}`;
    return `content (${a.size} -> ${b.size} bytes)`;
  });
  return `  ~ ${displayText(i.path)}: ${parts.join(', ')}`;
}

function head(tag: string, s: ListingSummary): string {
  return `${tag} ${displayText(s.file)}: ${displayText(s.image.name)} ${displayText(s.image.version)} (${s.image.uuid.slice(0, 36)}), origin ${displayText(s.origin.name)} ${displayText(s.origin.version)}, ${s.contentDigest}`;
}

export function renderDiff(r: DiffResult): string {
  const lines = [head('---', r.a), head('+++', r.b)];
  if (!r.sameOrigin) lines.push('note: the two images have different origins; a path a listing leaves out is as in its own origin');
  for (const g of r.groups) {
    const n = [g.added.length && `${g.added.length} added`, g.removed.length && `${g.removed.length} removed`, g.changed.length && `${g.changed.length} changed`].filter(Boolean);
    lines.push(`${displayText(g.top)}: ${n.join(', ')}`);
    for (const i of g.added) lines.push(`  + ${displayText(i.path)}  ${describe(i.b)}`);
    for (const i of g.removed) lines.push(`  - ${displayText(i.path)}  (was ${describe(i.a)})`);
    for (const i of g.changed) lines.push(changedLine(i));
  }
  const c = r.counts;
  lines.push(r.same ? `diff: same contents (${r.a.contentDigest})` : `diff: ${c.added} added, ${c.removed} removed, ${c.changed} changed${r.sameOrigin ? '' : ', origins differ'}`);
  return lines.join('\n');
}
