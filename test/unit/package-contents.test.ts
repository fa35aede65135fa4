/**
 * What `npm pack` ships: the product only (bin/, dist/src, dist/commands,
 * templates/, oclif.manifest.json, package.json, README), never the tests,
 * the test world (testbed/), scripts/ or their compiled copies and maps;
 * and what it ships is complete: every import of a shipped module resolves
 * to a shipped file or a runtime dependency. Reads `npm pack --dry-run
 * --json` (no network, no lifecycle scripts) after `npm run build`.
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
}

/** Where product files may live in the package. */
const ALLOWED = [/^bin\/[^/]+$/, /^dist\/src\/.+\.js$/, /^dist\/commands\/[^/]+\.js$/, /^templates\/.+/];
const TOP_FILES = new Set(['package.json', 'README.md', 'LICENSE', 'oclif.manifest.json']);
const NEVER = /^(test|testbed|scripts|sample|build)\/|^dist\/(test|testbed|scripts|sample)\/|\.map$|\.ts$/;

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
    files = packs[0].files.map((f) => f.path).sort();
    shipped = new Set(files);
  });

  it('ships only the product: bin/, dist/src, dist/commands, templates/ and the top-level files', () => {
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
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const deps = new Set(Object.keys(pkg.dependencies));
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
});
