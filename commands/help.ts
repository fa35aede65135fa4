import { Args, loadHelpClass } from '@oclif/core';
import { BaseCommand } from '../src/cli/base.js';
import { unknownCommand } from '../src/cli/not-found.js';

/**
 * `buildimage help [COMMAND]`, as the old tool and most CLIs answer it: the
 * same text as `--help` and `-h`, through oclif's own help class (oclif 4
 * has it; @oclif/plugin-help would only add this command); an unknown
 * command is the one error line an unknown command gets everywhere.
 */
export default class Help extends BaseCommand {
  static enableJsonFlag = false;
  static summary = 'Show the command list, or one command\'s help (the same as -h and --help).';
  static examples = ['<%= config.bin %> help', '<%= config.bin %> help build'];
  static args = { command: Args.string({ description: 'the command to show help for' }) };
  static strict = false;

  async run(): Promise<void> {
    const { argv } = await this.parse(Help);
    const [id] = argv as string[];
    if (id !== undefined && !this.config.findCommand(id) && !this.config.findTopic(id)) throw unknownCommand(id, this.config);
    const HelpClass = await loadHelpClass(this.config);
    await new HelpClass(this.config, this.config.pjson.oclif.helpOptions ?? {}).showHelp(argv as string[]);
  }
}
