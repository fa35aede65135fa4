import { flagsFor } from '../src/cli/flags.js';
import { StageCommand } from '../src/cli/stage-command.js';

export default class Assemble extends StageCommand {
  static summary = 'Stage 2: copy the proto directory (and motd) into the zone analog.';
  static examples = ['<%= config.bin %> assemble --state .buildimage/state.json'];
  static flags = flagsFor('assemble');
  protected readonly stage = 'assemble' as const;
}
