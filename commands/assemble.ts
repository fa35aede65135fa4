import { BaseCommand } from '../src/cli/base.js';
import { stageFlags } from '../src/cli/flags.js';
import { renderResult, renderTimings } from '../src/cli/render.js';
import { continueBuild, type BuildResult } from '../src/build.js';

export default class Assemble extends BaseCommand {
  static summary = 'Stage 2: copy the proto directory (and motd) into the zone analog.';
  static examples = ['<%= config.bin %> assemble --state .buildimage/state.json'];
  static flags = stageFlags;

  async run(): Promise<BuildResult> {
    const { flags } = await this.parse(Assemble);
    this.setupLogging(flags);
    const result = await continueBuild(flags.state, 'assemble', { stepTimeoutMs: flags.timeout, onTimings: renderTimings });
    this.result(renderResult(result));
    return result;
  }
}
