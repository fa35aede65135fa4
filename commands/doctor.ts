import { BaseCommand } from '../src/cli/base.js';
import { flagsFor } from '../src/cli/flags.js';
import { renderDoctor } from '../src/cli/render.js';
import { oneLine } from '../src/core/errors.js';
import { doctor, writeDoctorJunit, type DoctorResult } from '../src/setup/doctor.js';
import { required, resolveSetting } from '../src/settings/resolve.js';

export default class Doctor extends BaseCommand {
  static summary = 'Check that this machine can build (and with --publish, publish) images; print the fix for each problem.';
  static description =
    'Checks privileges, zfs, the dataset root (exists, takes new datasets, free space), the work and output dirs, ' +
    'chroot/mount, compressors, that the image source answers, and with --publish the Manta credentials and endpoint. ' +
    'Exits 1 when a needed check fails; warnings do not fail.';
  static examples = [
    '<%= config.bin %> doctor',
    '<%= config.bin %> doctor --dataset-root zones/$(zonename)/data -i 502eeef2-8267-489f-b19c-a206906f57ef',
    '<%= config.bin %> doctor --publish --json',
    '<%= config.bin %> doctor --junit reports/doctor.xml',
  ];
  static flags = flagsFor('doctor');

  async run(): Promise<DoctorResult> {
    const { flags } = await this.parse(Doctor);
    const s = await this.settings('doctor', flags, { skip: ['dataset-root'] });
    // A dataset root that is missing or malformed is a failed check, not a usage error.
    let datasetRoot: string | undefined;
    let datasetRootProblem: string | undefined;
    try {
      datasetRoot = required('dataset-root', (await resolveSetting('dataset-root', 'doctor', flags, process.env)) as string | undefined);
    } catch (err) {
      datasetRootProblem = oneLine(err);
    }
    const result = await doctor({
      datasetRoot,
      datasetRootProblem,
      workDir: s['work-dir'],
      outputDir: s['output-dir'],
      source: s.source,
      channel: s.channel,
      image: s.image,
      publish: s.publish,
      env: process.env,
    });
    if (s.junit) await writeDoctorJunit(s.junit, result);
    this.result(renderDoctor(result));
    if (!result.ok) process.exitCode = 1;
    return result;
  }
}
