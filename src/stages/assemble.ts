/** assemble: copy the proto directory into the zone analog's root/, and the optional motd. */
import { join } from 'node:path';
import type { StageContext } from '../context.js';
import { copyTree } from '../host/copy.js';
import { writeFileInRoot } from '../host/rootfs.js';
import { log } from '../log.js';
import { renderMotd } from '../motd.js';
import { startProgress } from '../progress.js';

export async function assemble(ctx: StageContext): Promise<void> {
  const { sf } = ctx;
  const def = sf.state.definition;
  const root = join(sf.state.analog!.mountpoint, 'root');
  log.info(`copying ${def.protoDir} into ${root}`);
  const progress = startProgress('copy', { unit: 'files' });
  const stats = await copyTree(def.protoDir, root, { onProgress: (s) => progress.update(s.files, { bytes: s.bytes }) }).finally(() =>
    progress.done(),
  );
  log.info(
    `copied ${stats.files} files (${(stats.bytes / 1e6).toFixed(1)} MB), ${stats.dirs} dirs, ${stats.symlinks} symlinks, ${stats.hardlinks} hardlinks`,
  );
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
