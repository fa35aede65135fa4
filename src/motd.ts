/** The /etc/motd the original writes with -M, from templates/motd. */
import { fill, readTemplate } from './templates.js';

export interface MotdInfo {
  name: string;
  version: string;
  sourceRepo?: string;
  origin: { name: string; version: string };
}

export function renderMotd(m: MotdInfo): string {
  return fill(readTemplate('motd'), {
    NAME: m.name,
    VERSION: m.version,
    SOURCE_REPO: m.sourceRepo ?? '',
    ORIGIN: `${m.origin.name}@${m.origin.version}`,
  });
}
