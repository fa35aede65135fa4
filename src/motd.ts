/** The /etc/motd the original writes with -M. */
export interface MotdInfo {
  name: string;
  version: string;
  sourceRepo?: string;
  origin: { name: string; version: string };
}

export function renderMotd(m: MotdInfo): string {
  const lines = [' =  T R I T O N  =', '', `    ${m.name} (${m.version})`];
  if (m.sourceRepo) lines.push(`    ${m.sourceRepo}`);
  lines.push(`    ${m.origin.name}@${m.origin.version}`, '', '');
  return lines.join('\n');
}
