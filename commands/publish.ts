import { Args } from '@oclif/core';
import { BaseCommand } from '../src/cli/base.js';
import { ExitCode } from '../src/core/errors.js';
import { flagsFor } from '../src/cli/flags.js';
import { publish, type PublishResult } from '../src/publish/publish.js';
import { renderPlan, renderPublished } from '../src/cli/render-publish.js';

export default class Publish extends BaseCommand {
  static summary = 'Publish build bits to Manta (or a local directory), as eng\'s bits-upload.sh does.';
  static description =
    'Uploads every file under the bits directory to <upload-dir>/<stamp>/, writes md5sums.txt, moves <branch>-latest ' +
    '(and latest-release for release-YYYYMMDD builds) and lists what was published in <bits>/artifacts.txt. ' +
    'Files already published with the same MD5 are skipped; a different MD5 fails. Rerunning after a failure finishes the job. ' +
    'Before anything is sent (and with --dry-run), every image manifest is checked by the imgmanifest rules IMGAPI applies, ' +
    "and every image file's size and sha1 against its manifest's files[0]: a bad one fails with exit 2.\n\n" +
    'Environment: MANTA_URL, MANTA_USER, MANTA_SUBUSER, MANTA_KEY_ID (MD5 or SHA256 fingerprint), MANTA_TLS_INSECURE, ' +
    'SSH_AUTH_SOCK, BITS_UPLOAD_ALLOW_DIRTY; with -p: UPDATES_IMGADM_URL (?channel= allowed), UPDATES_IMGADM_USER (default mg), ' +
    'UPDATES_IMGADM_IDENTITY (RSA key file or fingerprint; default ~/.ssh/automation.id_rsa, else ~/.ssh/id_rsa), UPDATES_IMGADM_CHANNEL, ' +
    'UPDATES_IMGADM_INSECURE.\n\n' +
    '-p imports each image idempotently: a rerun finishes an import left unactivated, adds an image active in another channel ' +
    'to this one, skips one already there, and fails if the uuid is on the server with another file.';
  static examples = [
    '<%= config.bin %> publish -b master -n imgapi -d /public/builds/imgapi -D bits',
    '<%= config.bin %> publish -b master -n imgapi -d /public/builds/imgapi --state .buildimage/state.json --dry-run',
    '<%= config.bin %> publish -L -d /tmp/published -b master -n demo -t master-20240101T000000Z-g0123abc',
  ];
  static strict = false;
  static args = {
    subdirs: Args.string({ description: 'only these subdirectories of the bits directory', required: false }),
  };
  static flags = flagsFor('publish');

  async run(): Promise<PublishResult> {
    const { flags, argv } = await this.parse(Publish);
    const s = await this.settings('publish', flags);
    const result = await publish({
      branch: s.branch,
      tryBranch: s['try-branch'],
      uploadDir: s['upload-dir'],
      bitsDir: s['bits-dir'],
      local: s.local,
      name: s.component,
      updates: s['publish-updates'],
      stamp: s.stamp,
      state: s.state,
      channel: s['updates-channel'],
      uploadFile: s['upload-file'],
      dryRun: s['dry-run'],
      subdirs: argv as string[],
      env: process.env,
    });
    this.result(result.dryRun ? renderPlan(result) : renderPublished(result));
    // A dry run that predicts a conflict exits as the real run would.
    if (result.dryRun && result.conflicts) process.exitCode = ExitCode.PUBLISH_FAILED;
    return result;
  }
}
