import { flagsFor } from '../src/cli/flags.js';
import { StageCommand } from '../src/cli/stage-command.js';

export default class Pkgadd extends StageCommand {
  static summary = 'Stage 3: pkgsrc in a chroot of the image (pkgin upgrade, pkg_add, pkg_info, audit), then clean pkgsrc cruft.';
  static examples = ['<%= config.bin %> pkgadd --state .buildimage/state.json'];
  static flags = flagsFor('pkgadd');
  protected readonly stage = 'pkgadd' as const;
}
