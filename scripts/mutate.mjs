#!/usr/bin/env node
// `npm run mutate [-- --mutate FILE[,FILE…]] [-- other stryker flags]`: mutation
// testing (TESTING.md), one Stryker run per group of modules that decide
// things, each with the unit test files that import a module of the group
// themselves: the group's own tests. A mutant in code that runs when a module
// loads ("static": a table of fields, a schema, a regex) makes Stryker rerun
// every test file it was given, so the whole suite there would cost a minute
// per static mutant; and a test that never loads a module cannot see a bug in
// it. A mutant that only a test reaching the module through others would
// kill counts as surviving.
//
// Ends with the scores per module (also in .stryker/scores.md) and every
// surviving mutant. Each group keeps its own incremental file, so a rerun
// only tests what changed.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BUILD = join(ROOT, 'build');
const UNIT = join(BUILD, 'test', 'unit');
// Never given to Stryker (see stryker.config.mjs mochaOptions.ignore).
const NOT_USED = new Set(['package-contents.test.js', 'bin-wrapper.test.js', 'standins.test.js']);

/**
 * The modules that decide things, in the groups they are mutated in. `only`
 * keeps a file's mutants to the named declarations (`Class.method` or a
 * top-level name): the rest of the file is texts and wiring.
 */
export const GROUPS = [
  { name: 'manifest', files: ['src/image/manifest/create.ts', 'src/image/manifest/input.ts', 'src/image/manifest/types.ts', 'src/image/manifest/validate.ts'] },
  { name: 'names', files: ['src/pkgsrc/names.ts'] },
  { name: 'channels', files: ['src/publish/bits.ts'] },
  { name: 'state', files: ['src/build/state.ts', 'src/build/owned.ts'] },
  { name: 'publish', files: ['src/publish/plan.ts', 'src/publish/apply.ts', 'src/imgapi/import-state.ts'] },
  {
    name: 'updates',
    files: ['src/publish/updates.ts'],
    // Which call comes next, what counts as recoverable, what a result and an error say; not the
    // dry-run and log texts (callText, doneText) or reading the environment (updatesImporterFromEnv).
    only: {
      'src/publish/updates.ts': [
        'STATE_MOVED', 'UpdatesImporter.plan', 'UpdatesImporter.apply', 'UpdatesImporter.fileParams', 'UpdatesImporter.line',
        'UpdatesImporter.run', 'UpdatesImporter.result', 'UpdatesImporter.originProblem', 'UpdatesImporter.recoverable',
        'UpdatesImporter.waitForFile', 'UpdatesImporter.call', 'UpdatesImporter.publishError', 'hintFor', 'isGatewayTimeout',
      ],
    },
  },
  {
    name: 'copy',
    files: ['src/host/copy.ts', 'src/host/rootfs.ts'],
    // Where the copy puts what, with which owner and mode (copyTree) and what it refuses; not WorkerPool's
    // scheduling (batch sizes, queue bounds: speed and memory, which a unit test cannot tell apart).
    only: { 'src/host/copy.ts': ['isNoSpace', 'protoDirProblem', 'copyTree'] },
  },
];

async function main(argv) {
  const i = argv.findIndex((a) => a === '--mutate' || a === '-m' || a.startsWith('--mutate='));
  let groups = GROUPS;
  let rest = argv;
  if (i >= 0) {
    const value = argv[i].startsWith('--mutate=') ? argv[i].slice('--mutate='.length) : argv[i + 1];
    if (!value) fail('--mutate needs a file (or a comma-separated list)');
    const files = value.split(',');
    // A group's name and declarations when it is one group's files; else a scope of its own.
    const same = GROUPS.find((g) => g.files.join(',') === files.join(','));
    groups = [same ?? { name: files.join(',').replace(/[^A-Za-z0-9._-]+/g, '_'), files }];
    rest = argv.filter((_, j) => j !== i && (argv[i].startsWith('--mutate=') || j !== i + 1));
  }
  run('npm', ['run', 'build:all']);
  const ts = (await import('typescript')).default;
  const started = Date.now();
  const failed = [];
  for (const group of groups) {
    const tests = testFilesFor(group.files.map((p) => p.replace(/:[\d:-]+$/, '')));
    const patterns = group.files.flatMap((f) => (group.only?.[f] ? ranges(ts, f, group.only[f]) : [f]));
    console.log(`mutate: ${group.name}: ${group.files.join(', ')} with ${tests.length} unit test files`);
    if (tests.length === 0) console.log(`mutate: no unit test file loads ${group.name}: every mutant goes without coverage`);
    // stryker.config.mjs gives the test files to mocha (not --testFiles: see there) and names the
    // incremental file and reports after the group.
    const env = { BUILDIMAGE_MUTATE_SCOPE: group.name, ...(tests.length ? { BUILDIMAGE_MUTATE_TESTS: tests.join(',') } : {}) };
    if (run('npx', ['stryker', 'run', '--mutate', patterns.join(','), ...rest], false, env) !== 0) failed.push(group.name);
  }
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  const table = scores(groups, minutes, ts);
  mkdirSync(join(ROOT, '.stryker'), { recursive: true });
  writeFileSync(join(ROOT, '.stryker', i >= 0 ? 'scores-scoped.md' : 'scores.md'), table);
  console.log(`\n${table}`);
  if (failed.length) fail(`Stryker failed for ${failed.join(', ')}`);
}

/** `file:start-end` for each named declaration (Stryker's mutate ranges). */
function ranges(ts, file, names) {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found = new Map();
  const line = (pos) => sf.getLineAndCharacterOfPosition(pos).line + 1;
  const add = (name, node) => found.set(name, `${file}:${line(node.getStart(sf))}-${line(node.getEnd())}`);
  for (const st of sf.statements) {
    if (ts.isFunctionDeclaration(st) && st.name) add(st.name.text, st);
    if (ts.isVariableStatement(st)) for (const d of st.declarationList.declarations) if (ts.isIdentifier(d.name)) add(d.name.text, st);
    if (ts.isClassDeclaration(st) && st.name) {
      for (const m of st.members) if (m.name && ts.isIdentifier(m.name)) add(`${st.name.text}.${m.name.text}`, m);
    }
  }
  const missing = names.filter((n) => !found.has(n));
  if (missing.length) fail(`${file} has no ${missing.join(', ')} (scripts/mutate.mjs GROUPS is out of date)`);
  return names.map((n) => found.get(n));
}

function run(cmd, args, must = true, env = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env } });
  if (must && r.status !== 0) fail(`${cmd} ${args.join(' ')} failed`);
  return r.status;
}

function fail(msg) {
  console.error(`mutate: ${msg}`);
  process.exit(1);
}

// ---- which unit tests load a module

/** Relative imports of one compiled file (static and dynamic). */
function importsOf(file) {
  let src = '';
  try {
    src = readFileSync(file, 'utf8');
  } catch {
    // not compiled (a .cjs in testbed, a JSON file): no imports of ours
  }
  return [...src.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => resolve(dirname(file), m[1]));
}

/** Unit test files (build/, relative to the repo) that import any of `sources` themselves. */
function testFilesFor(sources) {
  const targets = new Set(sources.flatMap(expand).map((s) => join(BUILD, s.replace(/\.ts$/, '.js'))));
  return readdirSync(UNIT)
    .filter((f) => f.endsWith('.test.js') && !NOT_USED.has(f))
    .sort()
    .filter((f) => importsOf(join(UNIT, f)).some((g) => targets.has(g)))
    .map((f) => relative(ROOT, join(UNIT, f)));
}

/** `src/x/*.ts` → the files; anything else as given. */
function expand(pattern) {
  if (!basename(pattern).includes('*')) return [pattern];
  const dir = dirname(pattern);
  const re = new RegExp(`^${basename(pattern).replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
  return readdirSync(join(ROOT, dir)).filter((f) => re.test(f)).map((f) => join(dir, f));
}

// ---- the scores


function scores(groups, minutes, ts) {
  const rows = [];
  const survivors = [];
  for (const group of groups) {
    const file = join(ROOT, '.stryker', group.name, 'report.json');
    if (!existsSync(file)) continue;
    const report = JSON.parse(readFileSync(file, 'utf8'));
    for (const [name, f] of Object.entries(report.files).sort(([a], [b]) => a.localeCompare(b))) {
      // With `only`, the declarations' lines: Stryker's incremental report also carries earlier results
      // for mutants outside them.
      const spans = group.only?.[name] ? ranges(ts, name, group.only[name]).map((r) => r.slice(r.lastIndexOf(':') + 1).split('-').map(Number)) : undefined;
      const mutants = spans ? f.mutants.filter((m) => spans.some(([a, b]) => m.location.start.line >= a && m.location.start.line <= b)) : f.mutants;
      const n = (s) => mutants.filter((m) => m.status === s).length;
      const killed = n('Killed');
      const timeout = n('Timeout');
      const survived = n('Survived');
      const noCov = n('NoCoverage');
      const valid = killed + timeout + survived + noCov;
      const score = valid ? (100 * (killed + timeout)) / valid : 100;
      rows.push(`| ${name} | ${killed} | ${survived} | ${timeout} | ${noCov} | ${n('CompileError')} | ${score.toFixed(1)} |`);
      for (const m of mutants.filter((x) => x.status === 'Survived' || x.status === 'NoCoverage')) {
        const where = `${name}:${m.location.start.line}:${m.location.start.column}`;
        const replacement = (m.replacement ?? '').replace(/\s+/g, ' ').slice(0, 100);
        survivors.push(`- ${where} ${m.mutatorName} (${m.status}${m.static ? ', static' : ''}): ${replacement}`);
      }
    }
  }
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  return [
    `Mutation scores, ${new Date().toISOString().slice(0, 10)}, commit ${commit}, ${minutes} min:`,
    '',
    '| module | killed | survived | timeout | no coverage | compile errors | score % |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    'Survivors:',
    ...(survivors.length ? survivors : ['(none)']),
    '',
  ].join('\n');
}

await main(process.argv.slice(2));
