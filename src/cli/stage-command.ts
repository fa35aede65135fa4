/** The three stage commands that continue a build from its state file differ only in the stage they run. */
import { BaseCommand } from './base.js';
import { stageFlags } from './flags.js';
import { renderResult, renderTimings } from './render.js';
import { continueBuild, type BuildResult } from '../build.js';
import type { StageName } from '../state.js';

export abstract class StageCommand extends BaseCommand {
  static flags = stageFlags;
  protected abstract readonly stage: Exclude<StageName, 'prepare'>;

  async run(): Promise<BuildResult> {
    const { flags } = await this.parse(this.constructor as typeof StageCommand);
    this.setupLogging(flags);
    const result = await continueBuild(flags.state, this.stage, { stepTimeoutMs: flags.timeout, onTimings: renderTimings });
    this.result(renderResult(result));
    return result;
  }
}
