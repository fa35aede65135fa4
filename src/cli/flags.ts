/** Flags shared by build and prepare: the original tool's, plus buildimage's own. */
import { Flags } from '@oclif/core';
import { DEFAULT_OUTPUT_DIR, parseDuration } from './definition.js';

/** `--timeout 90s|30m|2h` (a bare number is minutes): milliseconds. */
const timeoutFlag = Flags.custom<number>({
  description: 'how long any single step (command, send, receive) may take: 90s, 30m, 2h; a bare number is minutes',
  default: 30 * 60_000,
  parse: async (input) => parseDuration(input, '--timeout'),
});

export const buildFlags = {
  config: Flags.string({ description: 'build definition file (see `buildimage init`): defaults for these flags; the command line wins' }),
  image: Flags.string({ char: 'i', description: 'base (origin) image uuid (required, here or in --config)' }),
  dir: Flags.string({ char: 'd', description: 'proto directory copied into the image root (required, here or in --config)' }),
  manifest: Flags.string({
    char: 'm',
    description: 'image manifest JSON with name and version (required, here or in --config; merged over the --config one)',
  }),
  'image-version': Flags.string({ description: 'the image\'s version (e.g. the STAMP); wins over the manifest\'s' }),
  packages: Flags.string({ char: 'p', description: 'comma-separated pkgsrc packages to pkg_add' }),
  prefix: Flags.string({ char: 'P', description: 'output file prefix (default: NAME-zfs)' }),
  motd: Flags.boolean({ char: 'M', description: 'write /etc/motd' }),
  'source-repo': Flags.string({ char: 'S', description: 'source repository URL shown in the motd' }),
  audit: Flags.boolean({ char: 'a', description: 'run pkg_admin audit and write a .pkgaudit report' }),
  upgrade: Flags.boolean({ char: 'u', description: 'pkgin update and full-upgrade before pkg_add' }),
  source: Flags.string({
    description: 'where base images come from: a directory of *.imgmanifest files, or an IMGAPI URL [env: BUILDIMAGE_SOURCE]',
  }),
  channel: Flags.string({ description: 'IMGAPI channel of the source' }),
  'dataset-root': Flags.string({ description: 'dataset holding images and zone analogs [env: BUILDIMAGE_DATASET_ROOT]' }),
  'output-dir': Flags.string({ description: `where outputs are written (default ${DEFAULT_OUTPUT_DIR}, as the original)` }),
  compression: Flags.string({ description: 'image file compression (default gzip)', options: ['gzip', 'bzip2', 'xz', 'none'] }),
  'min-platform': Flags.string({ description: 'requirements.min_platform stamp (default: origin\'s; on SmartOS the host\'s)' }),
  'work-dir': Flags.string({ description: 'mountpoints, locks and temp files [env: BUILDIMAGE_WORK_DIR]' }),
  timeout: timeoutFlag(),
};

export const stateFlag = {
  state: Flags.string({ description: 'state file of a build in discrete stages', default: '.buildimage/state.json' }),
};

export const stageFlags = {
  ...stateFlag,
  timeout: timeoutFlag(),
};
