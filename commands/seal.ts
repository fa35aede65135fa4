import { BaseCommand } from '../src/cli/base.js';
import { stageFlags } from '../src/cli/flags.js';
import { renderResult, renderTimings } from '../src/cli/render.js';
import { continueBuild, type BuildResult } from '../src/build.js';

export default class Seal extends BaseCommand {
  static summary = 'Stage 4: snapshot, send, compress and hash the image; write its manifest; destroy the zone analog.';
  static examples = ['<%= config.bin %> seal --state .buildimage/state.json'];
  static flags = stageFlags;

  async run(): Promise<BuildResult> {
    const { flags } = await this.parse(Seal);
    this.setupLogging(flags);
    const result = await continueBuild(flags.state, 'seal', { stepTimeoutMs: flags.timeout, onTimings: renderTimings });
    this.result(renderResult(result));
    return result;
  }
}
