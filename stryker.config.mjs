// Mutation testing (`npm run mutate`, TESTING.md): Stryker plants small bugs
// in the modules that decide things and counts the ones the unit suite
// misses. Not part of `npm test` or .ci/run: it is slow.
//
// How it runs: Stryker instruments the TypeScript sources with every mutant
// at once (mutant switching), `buildCommand` compiles that copy once in the
// sandbox (dist/ for the CLI, build/ for the tests), and the mocha runner
// runs the compiled unit tests in build/test/unit, activating one mutant at
// a time and only the tests that cover it (perTest). The TypeScript checker
// drops mutants that do not compile before any test runs. Integration and
// hostile tests need ZFS and minutes per run: they are not used here.
//
// One module: npm run mutate -- --mutate src/pkgsrc/names.ts
// scripts/mutate.mjs names the group it runs; a bare `npx stryker run` is `all`.
const scope = process.env.BUILDIMAGE_MUTATE_SCOPE || 'all';

export default {
  testRunner: 'mocha',
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  // Stryker splits the command on spaces, without a shell: one script.
  buildCommand: 'npm run build:all',
  coverageAnalysis: 'perTest',
  mochaOptions: {
    // The unit tests, or the files scripts/mutate.mjs chose for this run
    // (those that import the mutated modules). Not Stryker's --testFiles:
    // with it, Stryker 9.6 filters a static mutant's run by file names as if
    // they were test names, and runs no test at all.
    spec: process.env.BUILDIMAGE_MUTATE_TESTS ? process.env.BUILDIMAGE_MUTATE_TESTS.split(',') : ['build/test/unit/**/*.test.js'],
    // .mocharc.json's root hooks load the integration world, and with it
    // src/host/copy.ts, before Stryker activates a mutant: a mutant in code
    // that runs at load could never be seen. Unit tests use no world.
    require: [],
    ignore: [
      // Packs the tarball and checks node_modules, which is a link in a
      // worktree and in Stryker's sandbox.
      'build/test/unit/package-contents.test.js',
      // These only run the CLI or the testbed's stand-in tools in child
      // processes, where no mutant is ever active: they cannot kill one, and
      // they are half the suite's time (every static mutant runs them all).
      'build/test/unit/bin-wrapper.test.js',
      'build/test/unit/standins.test.js',
    ],
  },
  mutate: [
    'src/publish/plan.ts',
    'src/publish/apply.ts',
    'src/publish/bits.ts',
    'src/publish/updates.ts',
    'src/imgapi/import-state.ts',
    'src/image/manifest/*.ts',
    'src/pkgsrc/names.ts',
    'src/host/copy.ts',
    'src/host/rootfs.ts',
    'src/build/state.ts',
    'src/build/owned.ts',
  ],
  // Reruns test only the mutants whose code or covering tests changed.
  // Stryker writes the incremental file with the mutants of this run only,
  // so each group keeps its own (one group's run does not wipe the others').
  incremental: true,
  incrementalFile: `.stryker/${scope}/incremental.json`,
  tempDirName: '.stryker/tmp',
  ignorePatterns: ['/.buildimage', '/run', '/.stryker'],
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `.stryker/${scope}/report.html` },
  jsonReporter: { fileName: `.stryker/${scope}/report.json` },
  clearTextReporter: { allowEmojis: false, reportTests: false, reportScoreTable: true },
  // The machine is shared: one test runner unless --concurrency says more.
  concurrency: 1,
  timeoutMS: 10000,
  dryRunTimeoutMinutes: 15,
  thresholds: { high: 90, low: 85, break: null },
};

