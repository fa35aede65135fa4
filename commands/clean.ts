import { Flags } from '@oclif/core';
import { BaseCommand } from '../src/cli/base.js';
import { resolveDatasetRoot, resolveWorkDir } from '../src/cli/definition.js';
import { renderClean } from '../src/cli/render.js';
import { cleanEverything, cleanFromState, type CleanResult } from '../src/build.js';
import { UsageError } from '../src/errors.js';

export default class Clean extends BaseCommand {
  static summary = 'Remove what a failed or killed build left: zone analog, mounts, -partial datasets, mountpoints, temp files.';
  static description = 'Only datasets that carry buildimage\'s ZFS user property are ever destroyed. --all skips builds whose process is still running.';
  static examples = [
    '<%= config.bin %> clean --state .buildimage/state.json',
    '<%= config.bin %> clean --state "$WORKSPACE/.buildimage/state.json" --missing-ok',
    '<%= config.bin %> clean --all --dataset-root zones/$(zonename)/data',
  ];
  static flags = {
    state: Flags.string({ description: 'state file of the build to clean', default: '.buildimage/state.json', exclusive: ['all'] }),
    all: Flags.boolean({ description: 'clean every leftover under the dataset root and work dir', default: false }),
    'missing-ok': Flags.boolean({ description: 'no state file is not an error: nothing to clean (for post { always { } })', default: false }),
    'dataset-root': Flags.string({ description: 'with --all [env: BUILDIMAGE_DATASET_ROOT]' }),
    'work-dir': Flags.string({ description: 'with --all [env: BUILDIMAGE_WORK_DIR]' }),
  };

  async run(): Promise<CleanResult> {
    const { flags } = await this.parse(Clean);
    this.setupLogging(flags);
    if (!flags.all && (flags['dataset-root'] || flags['work-dir'])) {
      throw new UsageError('--dataset-root and --work-dir go with --all');
    }
    const result = flags.all
      ? await cleanEverything(await resolveDatasetRoot(flags['dataset-root']), resolveWorkDir(flags['work-dir']))
      : await cleanFromState(flags.state, undefined, { missingOk: flags['missing-ok'] });
    this.result(renderClean(result));
    return result;
  }
}
