import { BaseCommand } from '../src/cli/base.js';
import { flagsFor } from '../src/cli/flags.js';
import { renderImages } from '../src/cli/render.js';
import { listImages, type ImagesResult } from '../src/base/cache.js';
import { defaultImgadmDir } from '../src/base/known.js';
import { Layout } from '../src/core/layout.js';
import { Zfs } from '../src/host/zfs.js';
import { required } from '../src/settings/resolve.js';

export default class Images extends BaseCommand {
  static summary = 'List the base images installed on the dataset root: name, version, size, last use, and who is cloned from each.';
  static description =
    'Name and version come from the manifest kept when the image was installed (or imgadm\'s record), else "-". Size is ZFS `used` ' +
    '(what destroying the image frees; `referenced` is in --json). "last used" is the time and build prepare recorded on the image ' +
    '(ZFS user property com.tritondatacenter.buildimage:last-used); images buildimage did not create are never written to, and never pruned.';
  static examples = ['<%= config.bin %> images --dataset-root zones/$(zonename)/data', '<%= config.bin %> images --json'];
  static flags = flagsFor('images');

  async run(): Promise<ImagesResult> {
    const { flags } = await this.parse(Images);
    const s = await this.settings('images', flags);
    const result = await listImages(new Zfs(), new Layout(required('dataset-root', s['dataset-root']), s['work-dir']), { imgadmDir: defaultImgadmDir() });
    this.result(renderImages(result));
    return result;
  }
}
