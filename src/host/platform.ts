/** Facts about the host: OS, platform stamp, zone, tools on PATH. */
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { run } from './exec.js';

export function isSmartOS(): boolean {
  return process.platform === 'sunos';
}

export async function findInPath(cmd: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export async function unameV(): Promise<string> {
  return (await run('uname', ['-v'])).stdout.trim();
}

/** The delegated dataset of this zone, as the original buildimage/imgadm find it: zones/<zonename>/data. */
export async function delegatedDataset(): Promise<string> {
  const zonename = (await run('zonename', [])).stdout.trim();
  return `zones/${zonename}/data`;
}
