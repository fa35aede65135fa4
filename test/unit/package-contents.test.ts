/**
 * What `npm pack` ships: the product (bin/, dist/src, dist/commands,
 * templates/, oclif.manifest.json, package.json, README) and its runtime
 * dependencies bundled (bundleDependencies: one tarball that installs with
 * no registry, nothing compiled at install), never the tests, the test
 * world (testbed/), scripts/, their compiled copies and maps, or a dev tool;
 * and what it ships is complete: every import of a shipped module resolves
 * to a shipped file or a runtime dependency, and every bundled package's
 * dependencies are bundled. Reads `npm pack --dry-run --json` (no network,
 * no lifecycle scripts) after `npm run build`. The offline install itself:
 * test/integration/offline-install.test.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, posix, relative } from 'node:path';
import { REPO } from '../helpers/cli.js';

interface PackResult {
  name: string;
  files: Array<{ path: string }>;
  bundled: string[];
}

interface PackageJson {
  name: string;
  version: string;
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  devDependencies?: Record<string, string>;
  bundleDependencies?: string[];
  scripts?: Record<string, string>;
  gypfile?: boolean;
}

/** The Node lines engines names: CI runs the machine's node and NODE_RUNTIMES=(…) in .ci/run. */
const NODE_LINES = [20, 22, 24];

/** `node_modules/a/node_modules/@s/b/lib/x.js` -> `node_modules/a/node_modules/@s/b` (the package dir holding a bundled file). */
function packageDir(path: string): string {
  const parts = path.split('/');
  let end = 0;
  for (let i = 0; i < parts.length - 1; i++) if (parts[i] === 'node_modules') end = i + (parts[i + 1].startsWith('@') ? 3 : 2);
  return parts.slice(0, end).join('/');
}

/** Where node finds `name` from the package at `dir`: its own node_modules, then each enclosing one. */
function resolveFrom(dir: string, name: string, dirs: Set<string>): string | undefined {
  let d = dir;
  for (;;) {
    const candidate = `${d}/node_modules/${name}`;
    if (dirs.has(candidate)) return candidate;
    const i = d.lastIndexOf('/node_modules/');
    if (i < 0) return dirs.has(`node_modules/${name}`) ? `node_modules/${name}` : undefined;
    d = d.slice(0, i);
  }
}

/** Where product files may live in the package. */
const ALLOWED = [/^bin\/[^/]+$/, /^dist\/src\/.+\.js$/, /^dist\/commands\/[^/]+\.js$/, /^templates\/.+/];
// buildimage.schema.json: the JSON Schema of buildimage.json (init's $schema names it).
const TOP_FILES = new Set(['package.json', 'README.md', 'LICENSE', 'oclif.manifest.json', 'buildimage.schema.json']);
const NEVER = /^(test|testbed|scripts|sample|build|examples)\/|^dist\/(test|testbed|scripts|sample|examples)\/|\.map$|\.ts$/;


/** Module specifiers a compiled ES module (or a TypeScript source) loads. */
function specifiers(code: string): string[] {
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /^\s*import\s+['"]([^'"]+)['"]/gm,
    /\bnew URL\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*,\s*import\.meta\.url/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) out.push(m[1]);
  return out;
}

/** A bare specifier's package name: `@scope/name/sub` -> `@scope/name`, `name/sub` -> `name`. */
function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Files under dir, relative to the repository. */
function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? listFiles(join(dir, d.name)) : d.isFile() ? [relative(REPO, join(dir, d.name))] : [],
  );
}

describe('the npm package', function () {
  this.timeout(60_000);
  let files: string[];
  let shipped: Set<string>;
  /** Bundled dependencies' files (node_modules/...), and the product's (the rest). */
  let depFiles: string[];
  let bundled: string[];
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as PackageJson;

  before(() => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts', '--offline'], {
      cwd: REPO,
      encoding: 'utf8',
      env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_loglevel: 'error' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const packs = JSON.parse(out) as PackResult[];
    assert.equal(packs.length, 1);
    assert.equal(packs[0].name, 'buildimage');
    const all = packs[0].files.map((f) => f.path).sort();
    depFiles = all.filter((f) => f.startsWith('node_modules/'));
    files = all.filter((f) => !f.startsWith('node_modules/'));
    shipped = new Set(all);
    bundled = packs[0].bundled ?? [];
  });

  it('ships only the product besides the bundled node_modules/: bin/, dist/src, dist/commands, templates/ and the top-level files', () => {
    const stray = files.filter((f) => !TOP_FILES.has(f) && !ALLOWED.some((re) => re.test(f)));
    assert.deepEqual(stray, [], 'files outside the product layout');
    const never = files.filter((f) => NEVER.test(f));
    assert.deepEqual(never, [], 'tests, test world, scripts, sources or source maps');
  });

  it('ships the entry points, every command oclif lists and every template', () => {
    for (const f of ['package.json', 'README.md', 'oclif.manifest.json', 'bin/buildimage', 'bin/run.js', 'dist/commands/build.js']) {
      assert.ok(shipped.has(f), `${f} is in the package`);
    }
    const manifest = JSON.parse(readFileSync(join(REPO, 'oclif.manifest.json'), 'utf8')) as { commands: Record<string, { relativePath: string[] }> };
    assert.ok(Object.keys(manifest.commands).length > 0);
    for (const [id, c] of Object.entries(manifest.commands)) assert.ok(shipped.has(c.relativePath.join('/')), `command ${id}`);
    const templates = listFiles(join(REPO, 'templates'));
    assert.ok(templates.length > 0);
    assert.deepEqual(templates.filter((t) => !shipped.has(t)), [], 'templates missing from the package');
  });

  it('is complete: each shipped module imports only shipped files, node built-ins and runtime dependencies', () => {
    const deps = new Set(Object.keys(pkg.dependencies ?? {}));
    const builtins = new Set(builtinModules);
    const problems: string[] = [];
    const js = files.filter((f) => f.endsWith('.js'));
    assert.ok(js.length > 20, `${js.length} modules`);
    for (const f of js) {
      for (const spec of specifiers(readFileSync(join(REPO, f), 'utf8'))) {
        if (spec.startsWith('.')) {
          const target = posix.normalize(posix.join(posix.dirname(f), spec));
          if (!shipped.has(target)) problems.push(`${f}: ${spec} (${target} is not shipped)`);
        } else if (spec.startsWith('node:')) {
          if (!builtins.has(spec) && !builtins.has(spec.slice(5))) problems.push(`${f}: ${spec} is not a node built-in`);
        } else if (!deps.has(packageName(spec)) && !builtins.has(spec)) {
          problems.push(`${f}: ${spec} is not a runtime dependency`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  it('comes from product sources that never import the test world, tests or scripts', () => {
    const problems: string[] = [];
    for (const top of ['src', 'commands']) {
      for (const f of listFiles(join(REPO, top)).filter((p) => p.endsWith('.ts'))) {
        for (const spec of specifiers(readFileSync(join(REPO, f), 'utf8')).filter((s) => s.startsWith('.'))) {
          const target = relative(REPO, join(REPO, dirname(f), spec)).split('/')[0];
          if (target !== 'src' && target !== 'commands') problems.push(`${f}: ${spec}`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  it('bundles every runtime dependency (bundleDependencies), with each bundled package\'s own dependencies, and no dev tool', () => {
    const deps = Object.keys(pkg.dependencies ?? {}).sort();
    assert.deepEqual([...(pkg.bundleDependencies ?? [])].sort(), deps, 'bundleDependencies names every runtime dependency');
    const dirs = new Set(depFiles.map(packageDir));
    for (const d of deps) assert.ok(dirs.has(`node_modules/${d}`), `${d} is bundled`);
    const dev = Object.keys(pkg.devDependencies ?? {});
    assert.deepEqual(bundled.filter((b) => dev.includes(b)), [], 'dev dependencies in the bundle');
    assert.ok(depFiles.every((f) => dirs.has(packageDir(f)) && shipped.has(`${packageDir(f)}/package.json`)), 'every bundled file is in a bundled package');
    // Offline means complete: each bundled package finds each dependency it needs inside the bundle, as node resolves it.
    const missing: string[] = [];
    for (const dir of dirs) {
      const p = JSON.parse(readFileSync(join(REPO, dir, 'package.json'), 'utf8')) as PackageJson;
      const optional = new Set([...Object.keys(p.optionalDependencies ?? {}), ...Object.entries(p.peerDependenciesMeta ?? {}).filter(([, m]) => m.optional).map(([n]) => n)]);
      const needs = [...Object.keys(p.dependencies ?? {}), ...Object.keys(p.peerDependencies ?? {})].filter((n) => !optional.has(n));
      for (const n of needs) if (!resolveFrom(dir, n, dirs)) missing.push(`${dir} needs ${n}`);
    }
    assert.deepEqual(missing, []);
  });

  it('bundles no package that bundles its own: `npm ci` would fetch each of those from the registry, where some never were', () => {
    // A bundle inside our bundle is installed entry by entry from package-lock.json: npm 11's own bundled
    // packages include versions the registry does not have (@npmcli/config 10.14.1), and a fresh npm ci failed.
    const nested = [...new Set(depFiles.map(packageDir))].filter((dir) => {
      const p = JSON.parse(readFileSync(join(REPO, dir, 'package.json'), 'utf8')) as PackageJson & { bundleDependencies?: unknown; bundledDependencies?: unknown };
      const b = p.bundleDependencies ?? p.bundledDependencies;
      return Array.isArray(b) ? b.length > 0 : b === true;
    });
    assert.deepEqual(nested, []);
  });

  it('installs without compiling: no bundled package has an install script, a binding.gyp or a prebuilt .node addon', () => {
    const problems: string[] = [];
    for (const dir of new Set(depFiles.map(packageDir))) {
      const p = JSON.parse(readFileSync(join(REPO, dir, 'package.json'), 'utf8')) as PackageJson;
      for (const s of ['preinstall', 'install', 'postinstall']) if (p.scripts?.[s]) problems.push(`${dir}: scripts.${s}`);
      if (p.gypfile) problems.push(`${dir}: gypfile`);
    }
    problems.push(...depFiles.filter((f) => /(^|\/)binding\.gyp$|\.node$/.test(f)));
    const own = pkg.scripts ?? {};
    for (const s of ['preinstall', 'install', 'postinstall']) if (own[s]) problems.push(`buildimage: scripts.${s}`);
    assert.deepEqual(problems, []);
  });

  it(`says which Node it runs on: engines names the lines CI runs (${NODE_LINES.join(', ')}), and this node is one of them`, () => {
    const range = pkg.engines?.node ?? '';
    const alternatives = range.split('||').map((a) => a.trim());
    assert.deepEqual(alternatives.map((a) => Number(/^\^(\d+)(\.\d+){0,2}$/.exec(a)?.[1])), NODE_LINES, `engines.node ${range}`);
    const ciRuntimes = /^NODE_RUNTIMES=\(([\d ]+)\)$/m.exec(readFileSync(join(REPO, '.ci/run'), 'utf8'))?.[1].split(' ').map(Number);
    assert.ok(ciRuntimes?.length, '.ci/run names its NODE_RUNTIMES');
    for (const m of ciRuntimes) assert.ok(NODE_LINES.includes(m), `.ci/run runs Node ${m}, which engines names`);
    const [major, minor] = process.versions.node.split('.').map(Number);
    const mine = alternatives.find((a) => Number(a.slice(1).split('.')[0]) === major);
    assert.ok(mine, `node ${process.version} is in engines (${range})`);
    assert.ok(minor >= Number(mine.slice(1).split('.')[1] ?? 0), `node ${process.version} satisfies ${mine}`);
  });
});
