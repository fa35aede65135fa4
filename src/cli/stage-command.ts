/** The three stage commands that continue a build from its state file differ only in the stage they run. */
import { continueBuild, type BuildResult } from '../build/runner.js';
import type { StageName } from '../build/state.js';
import { BaseCommand } from './base.js';
import { renderResult, renderTimings } from './render.js';

type Stage = Exclude<StageName, 'prepare'>;

export abstract class StageCommand extends BaseCommand {
  protected abstract readonly stage: Stage;

  async run(): Promise<BuildResult> {
    const { flags } = await this.parse(this.constructor as typeof StageCommand);
    const s = await this.settings(this.stage, flags);
    const result = await continueBuild(s.state, this.stage, { stepTimeoutMs: s.timeout, keepOnFailure: s['keep-on-failure'], onTimings: renderTimings, observer: this.buildObserver(s.timeout) });
    this.result(renderResult(result));
    return result;
  }
}
