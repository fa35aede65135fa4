import { flagsFor } from '../src/cli/flags.js';
import { StageCommand } from '../src/cli/stage-command.js';

export default class Seal extends StageCommand {
  static summary = 'Stage 4: snapshot, send, compress and hash the image; write its manifest; destroy the zone analog.';
  static examples = ['<%= config.bin %> seal --state .buildimage/state.json'];
  static flags = flagsFor('seal');
  protected readonly stage = 'seal' as const;
}
