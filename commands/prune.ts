import { BaseCommand } from '../src/cli/base.js';
import { flagsFor } from '../src/cli/flags.js';
import { renderPrune } from '../src/cli/render.js';
import { pruneImages, type PruneResult } from '../src/base/cache.js';
import { defaultImgadmDir } from '../src/base/known.js';
import { Layout } from '../src/core/layout.js';
import { Zfs } from '../src/host/zfs.js';
import { required } from '../src/settings/resolve.js';

export default class Prune extends BaseCommand {
  static summary = 'Destroy the base images no build used within --keep-days and no one is cloned from; only images buildimage installed.';
  static description =
    'An image stays when a build used it lately, when any dataset (an image, a live zone analog, anyone\'s zone) is a clone of it, when it was not ' +
    'created by buildimage (imgadm\'s), or when an import or a build holds it right now (skipped). A whole unused origin chain goes in one run, ' +
    'children first. The manifest kept for a destroyed image goes with it, and -partial leftovers of killed imports whose receive journal is ours. ' +
    'One line per image: destroyed, kept or skipped and why. Exits 0 when there was nothing to do; 1 when an image could not be destroyed.';
  static examples = [
    '<%= config.bin %> prune --dataset-root zones/$(zonename)/data',
    '<%= config.bin %> prune --keep-days 7 --dry-run',
    '<%= config.bin %> prune --keep-days 0 --json',
  ];
  static flags = flagsFor('prune');

  async run(): Promise<PruneResult> {
    const { flags } = await this.parse(Prune);
    const s = await this.settings('prune', flags);
    const layout = new Layout(required('dataset-root', s['dataset-root']), s['work-dir']);
    const result = await pruneImages(new Zfs(), layout, { keepDays: s['keep-days'], dryRun: s['dry-run'], imgadmDir: defaultImgadmDir() });
    this.result(renderPrune(result));
    if ([...result.images, ...result.partials].some((e) => e.action === 'failed')) process.exitCode = 1;
    return result;
  }
}
