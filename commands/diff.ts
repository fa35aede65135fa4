import { Args } from '@oclif/core';
import { BaseCommand } from '../src/cli/base.js';
import { flagsFor } from '../src/cli/flags.js';
import { renderDiff } from '../src/cli/render-diff.js';
import { diffFiles, type DiffResult } from '../src/contents/diff.js';

export default class Diff extends BaseCommand {
  static summary = "Compare two builds' contents listings (<prefix>-<version>.contents.json.gz): added, removed, changed.";
  static description =
    'Paths are grouped by top directory; a change says what differs (content, type, mode, owner). ' +
    'Exits 0 when the listings have the same contents, 1 when they differ, 2 when a listing cannot be read (as diff(1)).';
  static examples = [
    '<%= config.bin %> diff bits/svc/svc-zfs-1.0.0.contents.json.gz bits/svc/svc-zfs-1.0.1.contents.json.gz',
    '<%= config.bin %> diff old.contents.json.gz new.contents.json.gz --json',
  ];
  static args = {
    a: Args.string({ description: 'the first listing (.contents.json.gz)', required: true }),
    b: Args.string({ description: 'the second listing', required: true }),
  };
  static flags = flagsFor('diff');

  async run(): Promise<DiffResult> {
    const { args, flags } = await this.parse(Diff);
    await this.settings('diff', flags);
    const result = await diffFiles(args.a, args.b);
    this.result(renderDiff(result));
    if (!result.same) process.exitCode = 1;
    return result;
  }
}
