import { BaseCommand } from '../src/cli/base.js';
import { flagsFor } from '../src/cli/flags.js';
import { writeLockFromState, type LockResult } from '../src/build/runner.js';
import { lockfileForState } from '../src/settings/lockfile.js';
import { definitionFileOf } from '../src/settings/resolve.js';

export default class Lock extends BaseCommand {
  static summary = 'Write the package versions a build resolved (after its pkgadd stage) to the lockfile beside the build definition.';
  static description =
    'The lockfile (buildimage.lock.json beside buildimage.json) lists every package pkgadd installed or changed, at its exact version; `build --locked` installs exactly those. `build --write-lock` does the same at the end of a one-process build.';
  static examples = [
    '<%= config.bin %> lock --state .buildimage/state.json',
    '<%= config.bin %> lock --state .buildimage/state.json --config images/buildimage.json',
  ];
  static flags = flagsFor('lock');

  async run(): Promise<LockResult> {
    const { flags } = await this.parse(Lock);
    const s = await this.settings('lock', flags);
    const result = await writeLockFromState(s.state, lockfileForState(s['lock-file'], definitionFileOf(s)));
    this.result(`locked ${result.packages.length} package${result.packages.length === 1 ? '' : 's'} in ${result.lockfile}${result.packages.length ? `: ${result.packages.join(' ')}` : ''}`);
    return result;
  }
}
