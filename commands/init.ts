import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../src/cli/base.js';
import { renderInit } from '../src/cli/render.js';
import type { InitResult } from '../src/cli/schemas.js';
import { DEFAULT_BASE, DEFAULT_IMAGE_VER, DEFAULT_PI, DEFINITION_TEMPLATES, JENKINSFILE_KINDS, init, type DefinitionTemplate, type JenkinsfileKind } from '../src/init.js';

export default class Init extends BaseCommand {
  static summary = 'Write a starting build definition (buildimage.json) and Jenkinsfile for a component repo.';
  static description =
    'buildimage.json holds the defaults of build\'s flags (base image, proto dir, manifest, packages, motd, audit, ...) for ' +
    '`--config`; the Jenkinsfile runs the discrete stages and publishes (--jenkinsfile single: one step; publish-rerun: ' +
    'a manual publish job). Existing files are left alone unless --force. Prints the commands to try it locally.';
  static examples = [
    '<%= config.bin %> init',
    '<%= config.bin %> init ../sdc-imgapi --name imgapi --description "SDC IMGAPI"',
    '<%= config.bin %> init --template plain --jenkinsfile single --base 41bd4100-eb86-409a-85b0-e649aadf6f62 --image-ver 24.4.1',
  ];
  static args = {
    dir: Args.string({ description: 'the repo to write into', default: '.' }),
  };
  static flags = {
    name: Flags.string({ char: 'n', description: 'image name (default: the repo\'s name without sdc-/triton-/manta-)' }),
    description: Flags.string({ description: 'image description (default: "NAME image")' }),
    base: Flags.string({ char: 'i', description: `base (origin) image uuid (default: triton-origin-x86_64-21.4.0, ${DEFAULT_BASE})` }),
    template: Flags.string({ description: 'build definition: a Triton service image, or a plain one', options: [...DEFINITION_TEMPLATES], default: 'smartdc-service' }),
    jenkinsfile: Flags.string({ description: 'which Jenkinsfile', options: [...JENKINSFILE_KINDS], default: 'stages' }),
    'image-ver': Flags.string({ description: 'Jenkins agent image_ver label (must match the base image\'s pkgsrc)', default: DEFAULT_IMAGE_VER }),
    pi: Flags.string({ description: 'Jenkins agent platform image label', default: DEFAULT_PI }),
    force: Flags.boolean({ char: 'f', description: 'replace existing buildimage.json and Jenkinsfile', default: false }),
  };

  async run(): Promise<InitResult> {
    const { args, flags } = await this.parse(Init);
    this.setupLogging(flags);
    const result = await init({
      dir: args.dir,
      name: flags.name,
      description: flags.description,
      base: flags.base,
      template: flags.template as DefinitionTemplate,
      jenkinsfile: flags.jenkinsfile as JenkinsfileKind,
      imageVer: flags['image-ver'],
      pi: flags.pi,
      force: flags.force,
    });
    this.result(renderInit(result));
    return result;
  }
}
