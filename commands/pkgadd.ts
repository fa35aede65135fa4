import { BaseCommand } from '../src/cli/base.js';
import { stageFlags } from '../src/cli/flags.js';
import { renderResult, renderTimings } from '../src/cli/render.js';
import { continueBuild, type BuildResult } from '../src/build.js';

export default class Pkgadd extends BaseCommand {
  static summary = 'Stage 3: pkgsrc in a chroot of the image (pkgin upgrade, pkg_add, pkg_info, audit), then clean pkgsrc cruft.';
  static examples = ['<%= config.bin %> pkgadd --state .buildimage/state.json'];
  static flags = stageFlags;

  async run(): Promise<BuildResult> {
    const { flags } = await this.parse(Pkgadd);
    this.setupLogging(flags);
    const result = await continueBuild(flags.state, 'pkgadd', { stepTimeoutMs: flags.timeout, onTimings: renderTimings });
    this.result(renderResult(result));
    return result;
  }
}
