import { BaseCommand } from '../src/cli/base.js';
import { flagsFor } from '../src/cli/flags.js';
import { renderClean } from '../src/cli/render.js';
import { cleanEverything, cleanFromState, type CleanResult } from '../src/build/runner.js';
import { UsageError } from '../src/core/errors.js';
import { required } from '../src/settings/resolve.js';

export default class Clean extends BaseCommand {
  static summary = 'Remove what a failed or killed build left: zone analog, mounts, -partial datasets, mountpoints, temp files.';
  static description =
    'Only datasets that carry buildimage\'s ZFS user property are ever destroyed. --all skips builds whose process is still running, and builds kept on purpose (kept after a failure with --keep-on-failure, or waiting for their next discrete stage) unless given --include-kept.';
  static examples = [
    '<%= config.bin %> clean --state .buildimage/state.json',
    '<%= config.bin %> clean --state "$WORKSPACE/.buildimage/state.json" --missing-ok',
    '<%= config.bin %> clean --all --dataset-root zones/$(zonename)/data',
    '<%= config.bin %> clean --all --include-kept --dataset-root zones/$(zonename)/data',
  ];
  static flags = flagsFor('clean');

  async run(): Promise<CleanResult> {
    const { flags } = await this.parse(Clean);
    const s = await this.settings('clean', flags);
    if (s.all && flags.state !== undefined) throw new UsageError('--state and --all cannot be used together');
    if (s['include-kept'] && !s.all) throw new UsageError('--include-kept goes with --all', 'a kept build is cleaned with `clean --state FILE`');
    if (!s.all && (flags['dataset-root'] !== undefined || flags['work-dir'] !== undefined)) {
      throw new UsageError('--dataset-root and --work-dir go with --all');
    }
    const result = s.all
      ? await cleanEverything(required('dataset-root', s['dataset-root']), s['work-dir'], undefined, { includeKept: s['include-kept'] })
      : await cleanFromState(s.state, undefined, { missingOk: s['missing-ok'] });
    this.result(renderClean(result));
    return result;
  }
}
