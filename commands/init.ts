import { Args } from '@oclif/core';
import { BaseCommand } from '../src/cli/base.js';
import { renderInit } from '../src/cli/render.js';
import { flagsFor } from '../src/cli/flags.js';
import { init, type InitResult } from '../src/setup/init.js';

export default class Init extends BaseCommand {
  static summary = 'Write a starting build definition (buildimage.json) and Jenkinsfile for a component repo.';
  static description =
    'buildimage.json holds the defaults of build\'s flags (base image, proto dir, manifest, packages, motd, audit, ...) for ' +
    '`--config`; the Jenkinsfile runs the discrete stages and publishes (--jenkinsfile single: one step; publish-rerun: ' +
    'a manual publish job). Existing files are left alone unless --force. Prints the commands to try it locally.';
  static examples = [
    '<%= config.bin %> init',
    '<%= config.bin %> init ../sdc-imgapi --name imgapi --description "SDC IMGAPI"',
    '<%= config.bin %> init --template plain --jenkinsfile single -i 41bd4100-eb86-409a-85b0-e649aadf6f62 --image-ver 24.4.1',
  ];
  static args = {
    dir: Args.string({ description: 'the repo to write into', default: '.' }),
  };
  static flags = flagsFor('init');

  async run(): Promise<InitResult> {
    const { args, flags } = await this.parse(Init);
    const s = await this.settings('init', flags);
    const result = await init({
      dir: args.dir,
      name: s['image-name'],
      description: s.description,
      base: s.base,
      template: s.template,
      jenkinsfile: s.jenkinsfile,
      imageVer: s['image-ver'],
      pi: s.pi,
      force: s.force,
      env: process.env,
    });
    this.result(renderInit(result));
    return result;
  }
}
