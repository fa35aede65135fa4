import { BaseCommand } from '../src/cli/base.js';
import { flagsFor } from '../src/cli/flags.js';
import { renderResult, renderTimings } from '../src/cli/render.js';
import { startBuild, type BuildResult } from '../src/build/runner.js';
import { defineImages, selectImages } from '../src/settings/images.js';

export default class Prepare extends BaseCommand {
  static summary = 'Stage 1: import the base image and create the zone analog; records the build in a state file.';
  static examples = [
    `<%= config.bin %> prepare --config buildimage.json --image-version "$STAMP" --output-dir bits/imgapi --state .buildimage/state.json`,
    `<%= config.bin %> prepare -i 41bd4100-eb86-409a-85b0-e649aadf6f62 -d proto/root -m '{"name":"imgapi","version":"1.0.0"}' -P imgapi-zfs --state .buildimage/state.json`,
  ];
  static flags = flagsFor('prepare');

  async run(): Promise<BuildResult> {
    const { flags } = await this.parse(Prepare);
    const s = await this.settings('prepare', flags);
    // A definition with "images": the one --only names.
    const [image] = await defineImages(await selectImages('prepare', flags, s));
    const result = await startBuild(image.def, { statePath: s.state, stages: ['prepare'], stepTimeoutMs: s.timeout, keepOnFailure: s['keep-on-failure'], onTimings: renderTimings, observer: this.buildObserver(s.timeout) });
    this.result(renderResult(result));
    return result;
  }
}
