import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../src/cli/base.js';
import { publish, type PublishResult } from '../src/publish/publish.js';
import { renderPlan, renderPublished } from '../src/publish/render.js';

export default class Publish extends BaseCommand {
  static summary = 'Publish build bits to Manta (or a local directory), as eng\'s bits-upload.sh does.';
  static description =
    'Uploads every file under the bits directory to <upload-dir>/<stamp>/, writes md5sums.txt, moves <branch>-latest ' +
    '(and latest-release for release-YYYYMMDD builds) and lists what was published in <bits>/artifacts.txt. ' +
    'Files already published with the same MD5 are skipped; a different MD5 fails. Rerunning after a failure finishes the job.\n\n' +
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
  static flags = {
    branch: Flags.string({ char: 'b', description: 'branch (names the <branch>-latest pointer)' }),
    'try-branch': Flags.string({ char: 'B', description: 'try branch: wins over -b for the pointer and channel' }),
    'upload-dir': Flags.string({ char: 'd', description: 'upload base directory: Manta path (relative = under /<user>/stor) or, with -L, a local path' }),
    'bits-dir': Flags.string({ char: 'D', description: 'local directory with the bits', default: 'bits' }),
    local: Flags.boolean({ char: 'L', description: '-d is a local directory, not Manta', default: false }),
    name: Flags.string({ char: 'n', description: 'component name (default with --state: the image name)' }),
    'publish-updates': Flags.boolean({ char: 'p', description: 'also import images into the updates IMGAPI', default: false }),
    stamp: Flags.string({ char: 't', description: 'build stamp (default: <bits>/<name>/latest-build-stamp)' }),
    state: Flags.string({ description: 'state file of a finished build: its outputs are put into <bits>/<name>/ and published' }),
    channel: Flags.string({ description: 'updates IMGAPI channel (default: from the branch) [env: UPDATES_IMGADM_CHANNEL]' }),
    'upload-file': Flags.boolean({ description: 'with -p: upload the image file to IMGAPI from here instead of IMGAPI fetching it from Manta', default: false }),
    'dry-run': Flags.boolean({ description: 'print the plan (each upload, skip and API call) and change nothing', default: false }),
  };

  async run(): Promise<PublishResult> {
    const { flags, argv } = await this.parse(Publish);
    this.setupLogging(flags);
    const result = await publish({
      branch: flags.branch,
      tryBranch: flags['try-branch'],
      uploadDir: flags['upload-dir'],
      bitsDir: flags['bits-dir'],
      local: flags.local,
      name: flags.name,
      updates: flags['publish-updates'],
      stamp: flags.stamp,
      state: flags.state,
      channel: flags.channel,
      uploadFile: flags['upload-file'],
      dryRun: flags['dry-run'],
      subdirs: argv as string[],
      env: process.env,
    });
    this.result(result.dryRun ? renderPlan(result) : renderPublished(result));
    return result;
  }
}
