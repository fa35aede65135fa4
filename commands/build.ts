import { BaseCommand } from '../src/cli/base.js';
import { flagsFor } from '../src/cli/flags.js';
import { renderMany, renderManyTimings, renderResult, renderTimings } from '../src/cli/render.js';
import { startBuild, type BuildResult } from '../src/build/runner.js';
import { buildMany, imageJobs, manyBuildError, type ManyBuildResult } from '../src/build/multi.js';
import { defineImages, selectImages } from '../src/settings/images.js';
import { lockfilePath } from '../src/settings/lockfile.js';

const STAGES = ['prepare', 'assemble', 'pkgadd', 'seal'] as const;

export default class Build extends BaseCommand {
  static summary = 'Build a zone image: prepare, assemble, pkgadd and seal in one process.';
  static description =
    'Also what `buildimage -i ... -d ... -m ...` (no command) runs, as eng.git\'s Makefile calls it. A definition with ' +
    '"images" builds each of them (or those --only names), up to --jobs at a time, each its own build with its own outputs.';
  static examples = [
    `<%= config.bin %> build --config buildimage.json --image-version "$STAMP" --output-dir bits/imgapi`,
    `<%= config.bin %> build -i 41bd4100-eb86-409a-85b0-e649aadf6f62 -d /tmp/proto/root -m '{"name":"imgapi","version":"1.0.0"}' -p coreutils,curl -P imgapi-zfs --dataset-root zones/$(zonename)/data`,
    `<%= config.bin %> build --config buildimage.json --image-version "$STAMP" --locked`,
    `<%= config.bin %> build --config manta.json --image-version "$STAMP" --jobs 2 --only storage --only webapi`,
    `<%= config.bin %> -i 41bd4100-eb86-409a-85b0-e649aadf6f62 -d proto -m '{"name":"x","version":"1"}' -P x-zfs -a -M -S https://github.com/TritonDataCenter/x`,
  ];
  static flags = flagsFor('build');

  async run(): Promise<BuildResult | ManyBuildResult> {
    const { flags } = await this.parse(Build);
    const s = await this.settings('build', flags);
    const sel = await selectImages('build', flags, s);
    const defined = await defineImages(sel);
    if (!sel.multi) {
      const result = await startBuild(defined[0].def, {
        statePath: s.state,
        stages: [...STAGES],
        stepTimeoutMs: s.timeout,
        keepOnFailure: s['keep-on-failure'],
        onTimings: renderTimings,
        observer: this.buildObserver(s.timeout),
        ...(s['write-lock'] ? { writeLock: lockfilePath(s['lock-file'], s.config) } : {}),
      });
      this.result(renderResult(result));
      return result;
    }
    const result = await buildMany(imageJobs(defined, { state: s.state, writeLock: s['write-lock'] }), {
      jobs: s.jobs,
      failFast: s['fail-fast'],
      stages: [...STAGES],
      stepTimeoutMs: s.timeout,
      keepOnFailure: s['keep-on-failure'],
      observer: this.buildObserver(s.timeout),
    });
    renderManyTimings(result);
    if (!result.ok) throw manyBuildError(result);
    this.result(renderMany(result));
    return result;
  }
}
