/**
 * assemble: the proto into the zone analog's root/ (a directory copied, or
 * archives extracted: -d's, then each --add's, in order, an --add DIR=ARCHIVE
 * whole under DIR), and the optional motd.
 */
import { stat } from 'node:fs/promises';
import type { StageContext } from '../context.js';
import { copyTree } from '../../host/copy.js';
import { extractArchives } from '../../image/extract.js';
import { checkImageRoot, writeFileInRoot } from '../../host/rootfs.js';
import { log } from '../../core/log.js';
import { fill, readTemplate } from '../../core/templates.js';
import { recordedUrl } from '../../core/redact.js';
import { formatBytes, startProgress } from '../../core/progress.js';

export async function assemble(ctx: StageContext): Promise<void> {
  const { sf } = ctx;
  const def = sf.state.definition;
  // Checked again here: a stage may run in a process of its own, long after prepare.
  const root = await checkImageRoot(sf.state.analog!.mountpoint);
  // -d is a directory (copied as before) or an archive (extracted with the --add ones); the setting checked which.
  const protoIsDir = (await stat(def.protoDir).catch(() => undefined))?.isDirectory() ?? false;
  const archives = [...(protoIsDir ? [] : [def.protoDir]), ...(def.addArchives ?? [])];
  if (protoIsDir) {
    log.info(`copying ${def.protoDir} into ${root}`);
    const progress = startProgress('copy', { unit: 'files' });
    const stats = await copyTree(def.protoDir, root, { onProgress: (s) => progress.update(s.files, { bytes: s.bytes }) }).finally(() =>
      progress.done(),
    );
    log.info(
      `copied ${stats.files} files (${formatBytes(stats.bytes)}), ${stats.dirs} dirs, ${stats.symlinks} symlinks, ${stats.hardlinks} hardlinks`,
    );
  }
  if (archives.length) {
    const progress = startProgress('extract', { unit: 'files' });
    const stats = await extractArchives(archives, root, {
      keepOwners: def.keepOwners,
      onProgress: (s) => progress.update(s.files, { bytes: s.bytes }),
    }).finally(() => progress.done());
    log.info(
      `extracted ${stats.archives} archives: ${stats.files} files (${formatBytes(stats.bytes)}), ${stats.dirs} dirs, ${stats.symlinks} symlinks, ${stats.hardlinks} hardlinks` +
        (def.keepOwners ? ', owners kept' : ', owned by root:root'),
    );
  }
  if (def.motd) {
    const base = sf.state.base!;
    await writeFileInRoot(
      root,
      'etc/motd',
      renderMotd({
        name: def.manifest.name,
        version: def.manifest.version,
        sourceRepo: def.sourceRepo,
        origin: { name: base.name, version: base.version },
      }),
    );
    log.info('wrote /etc/motd');
  }
}

/** The /etc/motd the original writes with -M, from templates/motd. */
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
    // The image is published: the repository URL without credentials, whatever the state file said.
    SOURCE_REPO: m.sourceRepo ? recordedUrl(m.sourceRepo) : '',
    ORIGIN: `${m.origin.name}@${m.origin.version}`,
  });
}
