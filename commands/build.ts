import { BaseCommand } from '../src/cli/base.js';
import { withConfig } from '../src/cli/config.js';
import { definitionFromFlags } from '../src/cli/definition.js';
import { buildFlags } from '../src/cli/flags.js';
import { renderResult, renderTimings } from '../src/cli/render.js';
import { startBuild, type BuildResult } from '../src/build.js';
import { Flags } from '@oclif/core';

export default class Build extends BaseCommand {
  static summary = 'Build a zone image: prepare, assemble, pkgadd and seal in one process.';
  static description = 'Also what `buildimage -i ... -d ... -m ...` (no command) runs, as eng.git\'s Makefile calls it.';
  static examples = [
    `<%= config.bin %> build --config buildimage.json --image-version "$STAMP" --output-dir bits/imgapi`,
    `<%= config.bin %> build -i 41bd4100-eb86-409a-85b0-e649aadf6f62 -d /tmp/proto/root -m '{"name":"imgapi","version":"1.0.0"}' -p coreutils,curl -P imgapi-zfs --dataset-root zones/$(zonename)/data`,
    `<%= config.bin %> -i 41bd4100-eb86-409a-85b0-e649aadf6f62 -d proto -m '{"name":"x","version":"1"}' -P x-zfs -a -M -S https://github.com/TritonDataCenter/x`,
  ];
  static flags = {
    ...buildFlags,
    state: Flags.string({ description: 'keep the build state in this file (default: a file in the work dir, removed at the end)' }),
  };

  async run(): Promise<BuildResult> {
    const { flags } = await this.parse(Build);
    this.setupLogging(flags);
    const def = await definitionFromFlags(await withConfig(flags));
    const result = await startBuild(def, {
      statePath: flags.state,
      stages: ['prepare', 'assemble', 'pkgadd', 'seal'],
      stepTimeoutMs: flags.timeout,
      onTimings: renderTimings,
    });
    this.result(renderResult(result));
    return result;
  }
}
