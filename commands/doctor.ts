import { Flags } from '@oclif/core';
import { BaseCommand } from '../src/cli/base.js';
import { DEFAULT_OUTPUT_DIR, resolveDatasetRoot, resolveWorkDir } from '../src/cli/definition.js';
import { renderDoctor } from '../src/cli/render.js';
import type { DoctorResult } from '../src/cli/schemas.js';
import { doctor } from '../src/doctor.js';
import { oneLine } from '../src/errors.js';
import { DEFAULT_SOURCE } from '../src/images/sources.js';

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
  ];
  static flags = {
    'dataset-root': Flags.string({ description: 'dataset holding images and zone analogs [env: BUILDIMAGE_DATASET_ROOT]' }),
    'work-dir': Flags.string({ description: 'mountpoints, locks and temp files [env: BUILDIMAGE_WORK_DIR]' }),
    'output-dir': Flags.string({ description: 'where builds write their outputs', default: DEFAULT_OUTPUT_DIR }),
    source: Flags.string({ description: 'image source to try: a directory or an IMGAPI URL [env: BUILDIMAGE_SOURCE]' }),
    channel: Flags.string({ description: 'IMGAPI channel of the source' }),
    image: Flags.string({ char: 'i', description: 'also check this base image is in the source (or already imported)' }),
    publish: Flags.boolean({ description: 'also check Manta (MANTA_URL, MANTA_USER, MANTA_KEY_ID) and the publish credentials', default: false }),
  };

  async run(): Promise<DoctorResult> {
    const { flags } = await this.parse(Doctor);
    this.setupLogging(flags);
    let datasetRoot: string | undefined;
    let datasetRootProblem: string | undefined;
    try {
      datasetRoot = await resolveDatasetRoot(flags['dataset-root']);
    } catch (err) {
      datasetRootProblem = oneLine(err);
    }
    const result = await doctor({
      datasetRoot,
      datasetRootProblem,
      workDir: resolveWorkDir(flags['work-dir']),
      outputDir: flags['output-dir'],
      source: flags.source ?? process.env.BUILDIMAGE_SOURCE ?? DEFAULT_SOURCE,
      channel: flags.channel,
      image: flags.image?.toLowerCase(),
      publish: flags.publish,
      env: process.env,
    });
    this.result(renderDoctor(result));
    if (!result.ok) process.exitCode = 1;
    return result;
  }
}
