import { Args } from '@oclif/core';
import { BaseCommand } from '../src/cli/base.js';
import { flagsFor } from '../src/cli/flags.js';
import { required } from '../src/settings/resolve.js';
import { renderVerified, verifyImage, type VerifyResult } from '../src/provenance/verify.js';

export default class Verify extends BaseCommand {
  static summary = "Check an image file against its signed provenance: the envelope's signature by a public key, then the file's sha256 and sha1.";
  static description =
    'Reads <stem>.provenance.dsse.json beside the image (or --provenance FILE): a DSSE envelope around an in-toto SLSA v1 ' +
    "statement, signed with publish's SSH key. Prints one line and exits 0 when a signature in it is --key's and the image's " +
    'digests are the signed subject\'s; otherwise one error line and exit 4 (exit 2 for an unreadable key, image or envelope).';
  static examples = [
    '<%= config.bin %> verify demo-zfs-1.0.0.zfs.gz --key ~/.ssh/id_rsa.pub',
    '<%= config.bin %> verify demo-zfs-1.0.0.zfs.gz --key signer.pub --provenance demo-zfs-1.0.0.provenance.dsse.json',
  ];
  static args = {
    image: Args.string({ description: 'the image file (.zfs.gz, .zfs.xz, ...)', required: true }),
  };
  static flags = flagsFor('verify');

  async run(): Promise<VerifyResult> {
    const { flags, args } = await this.parse(Verify);
    const s = await this.settings('verify', flags);
    const result = await verifyImage({ image: args.image, key: required('key', s.key), provenance: s.provenance });
    this.result(renderVerified(result));
    return result;
  }
}
