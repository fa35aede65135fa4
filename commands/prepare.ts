import { BaseCommand } from '../src/cli/base.js';
import { withConfig } from '../src/cli/config.js';
import { definitionFromFlags } from '../src/cli/definition.js';
import { buildFlags, stateFlag } from '../src/cli/flags.js';
import { renderResult, renderTimings } from '../src/cli/render.js';
import { startBuild, type BuildResult } from '../src/build.js';

export default class Prepare extends BaseCommand {
  static summary = 'Stage 1: import the base image and create the zone analog; records the build in a state file.';
  static examples = [
    `<%= config.bin %> prepare --config buildimage.json --image-version "$STAMP" --output-dir bits/imgapi --state .buildimage/state.json`,
    `<%= config.bin %> prepare -i 41bd4100-eb86-409a-85b0-e649aadf6f62 -d proto/root -m '{"name":"imgapi","version":"1.0.0"}' -P imgapi-zfs --state .buildimage/state.json`,
  ];
  static flags = { ...buildFlags, ...stateFlag };

  async run(): Promise<BuildResult> {
    const { flags } = await this.parse(Prepare);
    this.setupLogging(flags);
    const def = await definitionFromFlags(await withConfig(flags));
    const result = await startBuild(def, { statePath: flags.state, stages: ['prepare'], stepTimeoutMs: flags.timeout, onTimings: renderTimings });
    this.result(renderResult(result));
    return result;
  }
}
