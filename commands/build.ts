import { BaseCommand } from '../src/cli/base.js';
import { flagsFor } from '../src/cli/flags.js';
import { renderResult, renderTimings } from '../src/cli/render.js';
import { startBuild, type BuildResult } from '../src/build/runner.js';
import { buildDefinition } from '../src/settings/definition.js';
import { lockfilePath } from '../src/settings/lockfile.js';

export default class Build extends BaseCommand {
  static summary = 'Build a zone image: prepare, assemble, pkgadd and seal in one process.';
  static description = 'Also what `buildimage -i ... -d ... -m ...` (no command) runs, as eng.git\'s Makefile calls it.';
  static examples = [
    `<%= config.bin %> build --config buildimage.json --image-version "$STAMP" --output-dir bits/imgapi`,
    `<%= config.bin %> build -i 41bd4100-eb86-409a-85b0-e649aadf6f62 -d /tmp/proto/root -m '{"name":"imgapi","version":"1.0.0"}' -p coreutils,curl -P imgapi-zfs --dataset-root zones/$(zonename)/data`,
    `<%= config.bin %> build --config buildimage.json --image-version "$STAMP" --locked`,
    `<%= config.bin %> -i 41bd4100-eb86-409a-85b0-e649aadf6f62 -d proto -m '{"name":"x","version":"1"}' -P x-zfs -a -M -S https://github.com/TritonDataCenter/x`,
  ];
  static flags = flagsFor('build');

  async run(): Promise<BuildResult> {
    const { flags } = await this.parse(Build);
    const s = await this.settings('build', flags);
    const result = await startBuild(await buildDefinition(s), {
      statePath: s.state,
      stages: ['prepare', 'assemble', 'pkgadd', 'seal'],
      stepTimeoutMs: s.timeout,
      keepOnFailure: s['keep-on-failure'],
      onTimings: renderTimings,
      observer: this.buildObserver(s.timeout),
      ...(s['write-lock'] ? { writeLock: lockfilePath(s['lock-file'], s.config) } : {}),
    });
    this.result(renderResult(result));
    return result;
  }
}
