/** Human renderings of a publish result; --json prints the result as it is. */
import type { Step } from '../publish/apply.js';
import { formatBytes } from '../core/progress.js';
import type { PublishResult } from '../publish/publish.js';
import { transferWords, type TransferWords } from '../publish/store.js';

function stepLine(s: Step, words: TransferWords): string {
  switch (s.op) {
    case 'stage':
      return `stage     ${s.path} (from ${s.from})`;
    case 'mkdir':
      return `mkdir     ${s.path}`;
    case 'upload':
      return `${words.verb.padEnd(10)}${s.path} (${formatBytes(s.size)})`;
    case 'skip':
      return `skip      ${s.path} (${s.reason})`;
    case 'conflict':
      return `CONFLICT  ${s.path} ${s.reason}`;
    case 'put':
      return `write     ${s.path}`;
    case 'pointer':
      return `pointer   ${s.path} → ${s.target}${s.unchanged ? ' (unchanged)' : ''}`;
    case 'artifacts':
      return `list      ${s.path}`;
    case 'import':
      // One line per IMGAPI call it would make (or made), under the import.
      return [`import    ${s.uuid} from ${s.path} into channel ${s.channel}: ${s.action}${s.detail ? ` (${s.detail})` : ''}`, ...(s.calls ?? []).map((c) => `            ${c}`)].join('\n  ');
  }
}

/** The --dry-run plan: one line per upload, skip and API call, then a summary. */
export function renderPlan(r: PublishResult): string {
  const head = `plan: publish ${r.name} ${r.stamp} (branch ${r.branch}${r.tryBranch ? `, try ${r.tryBranch}` : ''}, channel ${r.channel}) to ${r.destination} on ${r.store.description}`;
  const conflicts = r.conflicts ? `, ${r.conflicts} conflict${r.conflicts > 1 ? 's' : ''} (publishing would fail)` : '';
  const words = transferWords(r.store.kind);
  const tail = `dry run: ${r.uploaded} to ${words.verb} (${formatBytes(r.bytes)}), ${r.skipped} already published${conflicts}; nothing was changed`;
  return [head, ...r.steps.map((s) => `  ${stepLine(s, words)}`), tail].join('\n');
}

export function renderPublished(r: PublishResult): string {
  const pointers = r.steps
    .filter((s): s is Extract<Step, { op: 'pointer' }> => s.op === 'pointer')
    .map((s) => `${s.path.split('/').pop()}${s.unchanged ? ' unchanged' : ' moved'}`);
  const imports = r.steps
    .filter((s): s is Extract<Step, { op: 'import' }> => s.op === 'import')
    .map((s) => `; updates IMGAPI: ${s.uuid} ${s.action} (channel ${s.channel})`)
    .join('');
  return `published ${r.name} ${r.stamp} to ${r.destination}: ${r.uploaded} ${transferWords(r.store.kind).done} (${formatBytes(r.bytes)}), ${r.skipped} already there; ${pointers.join(', ')}${imports} (${r.seconds.toFixed(1)} s)`;
}
