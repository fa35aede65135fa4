import { BaseCommand } from '../src/cli/base.js';
import { flagsFor } from '../src/cli/flags.js';
import { renderPlan } from '../src/cli/render.js';
import { planImages, type PlanResult } from '../src/build/plan.js';
import { selectImages } from '../src/settings/images.js';

export default class Plan extends BaseCommand {
  static summary = 'List the images a build definition makes and what each needs (base, packages, proto, output stem, size), for a Jenkinsfile to fan them out.';
  static description =
    'Reads the definition (after --only) and this machine only: creates nothing, asks no image source, and the protos need ' +
    'not exist yet. The estimated size is the base image\'s referenced bytes when it is installed here, plus the proto\'s and ' +
    'the archives\' bytes; packages are not counted.';
  static examples = [
    '<%= config.bin %> plan --config buildimage.json --json',
    '<%= config.bin %> plan --config manta.json --only storage',
  ];
  static flags = flagsFor('plan');

  async run(): Promise<PlanResult> {
    const { flags } = await this.parse(Plan);
    const s = await this.settings('plan', flags);
    const result = await planImages(await selectImages('plan', flags, s));
    this.result(renderPlan(result));
    return result;
  }
}
