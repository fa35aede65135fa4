/**
 * The Jenkinsfiles (top-level examples and init's templates), the eng
 * Makefile fragment, the README and every command's own --help examples:
 * each `buildimage …` command line names a real command with real flags;
 * the Groovy parses (with the parser Jenkins uses) as a declarative
 * pipeline; the examples are the templates rendered.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Config } from '@oclif/core';
import { DEFAULT_BASE, EXAMPLE_VALUES, init, renderJenkinsfile } from '../../src/setup/init.js';
import { EXAMPLES, REPO_ROOT } from '../../scripts/render-examples.js';
import { haveGroovy, parseJenkinsfile, runJenkinsfile } from '../helpers/jenkins.js';

interface CommandLine {
  source: string;
  text: string;
  words: string[];
}

/** Shell-ish words: quotes kept together, `${VAR:+-t "$VAR"}` opened up, stops at && || ; | > # and ''' . */
export function shellWords(text: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (text.startsWith("'''", i) || text.startsWith('"""', i) || /^(&&|\|\||[;|>#)])/.test(text.slice(i))) break;
    const m = /^\$\{\w+:\+([^}]*)\}/.exec(text.slice(i));
    if (m) {
      words.push(...shellWords(m[1]));
      i += m[0].length;
      continue;
    }
    let w = '';
    while (i < text.length && !/\s/.test(text[i])) {
      const q = text[i];
      if (q === "'" || q === '"') {
        const end = text.indexOf(q, i + 1);
        w += text.slice(i + 1, end < 0 ? undefined : end);
        i = end < 0 ? text.length : end + 1;
      } else {
        w += q;
        i++;
      }
    }
    words.push(w);
  }
  return words;
}

type Kind = 'jenkinsfile' | 'makefile' | 'markdown' | 'shell';

/** The parts of a file that are commands: sh steps, recipe lines, code blocks and spans. */
function codeOf(kind: Kind, text: string): string {
  const joined = text.replace(/\\\r?\n\s*/g, ' ');
  switch (kind) {
    case 'jenkinsfile':
      return [...joined.matchAll(/\b(?:sh|script:)\s*\(?\s*('''[\s\S]*?'''|'[^'\n]*'|"""[\s\S]*?"""|"[^"\n]*")/g)]
        .map((m) => m[1].replace(/^('''|"""|'|")|('''|"""|'|")$/g, ''))
        .join('\n');
    case 'makefile':
      return joined.split('\n').filter((l) => l.startsWith('\t')).join('\n');
    case 'markdown':
      return [...text.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1].replace(/\\\r?\n\s*/g, ' '))
        .concat([...text.replace(/```[\s\S]*?```/g, '').matchAll(/`([^`\n]+)`/g)].map((m) => m[1]))
        .join('\n');
    case 'shell':
      return joined;
  }
}

/** Every `buildimage …` (eng's Makefile: `$(BUILDIMAGE_TOOL) …`) in the code of a text. */
function commandLines(source: string, text: string, kind: Kind): CommandLine[] {
  const out: CommandLine[] = [];
  const re = kind === 'makefile' ? /\$\(BUILDIMAGE_TOOL\) / : /(?:^|[\s'"(&|;])buildimage (?=[a-z-])/;
  for (const line of codeOf(kind, text).split('\n')) {
    // `make … buildimage …` names eng's make target, not this tool.
    if (/^\s*make\b/.test(line)) continue;
    const g = new RegExp(re.source, 'g');
    let m: RegExpExecArray | null;
    while ((m = g.exec(line))) {
      const words = shellWords(line.slice(m.index + m[0].length));
      if (words.length) out.push({ source, text: line.trim(), words });
    }
  }
  return out;
}

interface FlagInfo {
  type: string;
  char?: string;
}

let commands: Map<string, Record<string, FlagInfo>>;
/** buildimage's own commands (the others come from oclif plugins: autocomplete). */
let own: Set<string>;
let examples: Array<{ id: string; text: string }>;

async function loadManifest(): Promise<void> {
  const config = await Config.load(REPO_ROOT);
  commands = new Map(config.commands.map((c) => [c.id, c.flags as Record<string, FlagInfo>]));
  own = new Set(config.commands.filter((c) => c.pluginName === config.name).map((c) => c.id));
  examples = config.commands.flatMap((c) =>
    (c.examples ?? []).map((e) => ({ id: c.id, text: (typeof e === 'string' ? e : e.command).replace('<%= config.bin %>', 'buildimage') })),
  );
}

/** Problems with one command line: unknown command or flag, an option without a value. */
function problems(cl: CommandLine): string[] {
  let words = cl.words;
  // bin/run.js answers these alone, before any command.
  if (words.length === 1 && ['--version', '-V', '--help', '-h'].includes(words[0])) return [];
  // No command: the eng Makefile's `buildimage -i … -d … -m …` means build.
  const id = words[0] && !words[0].startsWith('-') ? words[0] : 'build';
  if (words[0] === id) words = words.slice(1);
  const flags = commands.get(id);
  if (!flags) return [`unknown command ${id}`];
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    // Help, for every command (package.json oclif.additionalHelpFlags).
    if (!w.startsWith('-') || w === '-' || w === '-h' || w === '--help') continue;
    let name: string | undefined;
    let inlineValue = false;
    if (w.startsWith('--')) {
      const [n] = w.slice(2).split('=');
      inlineValue = w.includes('=');
      name = flags[n] ? n : undefined;
      if (!name) out.push(`${id}: no flag ${w.split('=')[0]}`);
    } else {
      name = Object.keys(flags).find((k) => flags[k].char === w.slice(1));
      if (w.length !== 2 || !name) out.push(`${id}: no flag ${w}`);
    }
    if (name && flags[name].type === 'option' && !inlineValue) {
      if (i + 1 >= words.length) out.push(`${id}: ${w} needs a value`);
      i++;
    }
  }
  return out;
}

function groovyJavaHome(): string | undefined {
  if (existsSync('/usr/lib/jvm/default-java/bin/java')) return '/usr/lib/jvm/default-java';
  const java = spawnSync('sh', ['-c', 'command -v java'], { encoding: 'utf8' }).stdout.trim();
  return java ? realpathSync(java).replace(/\/bin\/java$/, '') : undefined;
}

describe('Jenkinsfiles, templates and documented command lines', function () {
  this.timeout(60_000);
  let dir: string;
  let initWritten: string[];
  const sources: Array<[string, string, Kind]> = [];
  before(async () => {
    await loadManifest();
    dir = await mkdtemp(join(tmpdir(), 'bi-jenkins-'));
    for (const file of Object.keys(EXAMPLES)) sources.push([file, readFileSync(join(REPO_ROOT, file), 'utf8'), 'jenkinsfile']);
    sources.push(['templates/eng/Makefile.buildimage', readFileSync(join(REPO_ROOT, 'templates/eng/Makefile.buildimage'), 'utf8'), 'makefile']);
    sources.push(['README.md', readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'), 'markdown']);
    const r = await init({ dir, template: 'smartdc-service', jenkinsfile: 'stages', imageVer: '21.4.0', pi: '20210826T002459Z', force: false });
    initWritten = r.written;
    sources.push(['init next steps', r.next.join('\n'), 'shell']);
    for (const e of examples) sources.push([`${e.id} --help example`, e.text, 'shell']);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('the examples at the top of the repo are the templates rendered (node build/scripts/render-examples.js)', () => {
    for (const [file, kind] of Object.entries(EXAMPLES)) {
      assert.equal(readFileSync(join(REPO_ROOT, file), 'utf8'), renderJenkinsfile(kind, EXAMPLE_VALUES), `${file} is stale`);
    }
  });

  it('publish has bits-upload.sh\'s flags and ours', () => {
    const p = commands.get('publish')!;
    const chars = Object.values(p).map((f) => f.char).filter(Boolean);
    for (const c of ['b', 'B', 'd', 'D', 'L', 'n', 'p', 't']) assert.ok(chars.includes(c), `-${c}`);
    for (const f of ['state', 'channel', 'dry-run', 'json']) assert.ok(p[f], `--${f}`);
  });

  it('every command has --help examples, and --json', () => {
    assert.ok(own.has('build') && !own.has('autocomplete'), [...own].join(' '));
    for (const [id, flags] of [...commands].filter(([id]) => own.has(id))) {
      assert.ok(examples.some((e) => e.id === id), `${id} has examples`);
      // `help` prints help text, nothing to give as JSON.
      if (id !== 'help') assert.ok(flags.json, `${id} --json`);
    }
  });

  it('every buildimage command line names a real command with real flags', () => {
    const all = sources.flatMap(([name, text, kind]) => commandLines(name, text, kind));
    const perSource = new Map<string, number>();
    for (const cl of all) perSource.set(cl.source, (perSource.get(cl.source) ?? 0) + 1);
    for (const f of [...Object.keys(EXAMPLES), 'templates/eng/Makefile.buildimage', 'README.md']) assert.ok((perSource.get(f) ?? 0) >= 1, `${f} has buildimage lines`);
    assert.ok((perSource.get('Jenkinsfile.example') ?? 0) >= 6, 'prepare, assemble, pkgadd, seal, publish, clean');
    const bad = all.flatMap((cl) => problems(cl).map((p) => `${cl.source}: ${p}\n    ${cl.text}`));
    assert.deepEqual(bad, []);
    // The checker itself catches what it should.
    assert.deepEqual(problems({ source: 't', text: '', words: shellWords('publish -b x --dryrun -Q -t') }), [
      'publish: no flag --dryrun',
      'publish: no flag -Q',
      'publish: -t needs a value',
    ]);
  });

  it('the stages Jenkinsfile runs prepare → assemble → pkgadd → seal → publish on one state file, and cleans in post/always', () => {
    const text = readFileSync(join(REPO_ROOT, 'Jenkinsfile.example'), 'utf8');
    const order = commandLines('x', text, 'jenkinsfile').map((c) => c.words[0]);
    assert.deepEqual(order, ['prepare', 'assemble', 'pkgadd', 'seal', 'publish', 'clean']);
    for (const cl of commandLines('x', text, 'jenkinsfile')) assert.ok(cl.words.join(' ').includes('--state $BUILDIMAGE_STATE'), cl.text);
    assert.match(text, /post \{\s+always \{\s+\/\/[^\n]*\n(\s+\/\/[^\n]*\n)*\s+sh 'buildimage clean/);
    for (const s of ['timestamps()', 'buildDiscarder(', 'timeout(', 'joyCommonLabels(image_ver:', 'archiveArtifacts']) assert.ok(text.includes(s), s);
  });

  it('the Groovy parses as a declarative pipeline (groovy, as Jenkins parses it)', async function () {
    const javaHome = groovyJavaHome();
    const groovy = spawnSync('sh', ['-c', 'command -v groovy'], { encoding: 'utf8' }).stdout.trim();
    if (!groovy || !javaHome) {
      // CI installs groovy (scripts/setup-host.sh): there it must run.
      if (process.env.CI) assert.fail('groovy is not installed (scripts/setup-host.sh installs it)');
      this.skip();
    }
    const files = Object.keys(EXAMPLES).map((f) => join(REPO_ROOT, f));
    for (const kind of ['stages', 'single', 'publish-rerun', 'multi'] as const) {
      const f = join(dir, `${kind}.Jenkinsfile`);
      await writeFile(f, renderJenkinsfile(kind, { name: 'svc', imageVer: '24.4.1', pi: '20240101T000000Z', config: 'images/svc/buildimage.json' }));
      files.push(f);
    }
    const broken = join(dir, 'broken.Jenkinsfile');
    await writeFile(broken, "pipeline {\n  agent any\n  stages { stage('x') { step { sh 'true' } } }\n}\n");
    const script = join(REPO_ROOT, 'scripts', 'CheckJenkinsfile.groovy');
    const env = { ...process.env, JAVA_HOME: javaHome };
    const out = execFileSync(groovy, [script, ...files], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(out.trim().split('\n').filter((l) => l.startsWith('ok ')).length, files.length, out);
    const bad = spawnSync(groovy, [script, broken], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /stage 'x': unknown section step/);
    assert.match(bad.stderr, /stage 'x' has no steps/);
  });

  it('init writes no proto/ into the checkout: the re-clean stage (git clean -fdx) would delete it', () => {
    assert.deepEqual(initWritten, [join(dir, 'buildimage.json'), join(dir, 'Jenkinsfile')]);
    assert.equal(existsSync(join(dir, 'proto')), false);
  });

  it('the examples hand buildimage the release tarball (-d NAME-pkg-STAMP.tar.gz) and each agent under eng AGENT_PREBUILT_ROOTDIR (--add ROOTDIR=TARBALL), and publish only master, release-* and manual runs', () => {
    for (const file of ['Jenkinsfile.example', 'Jenkinsfile.single.example']) {
      const text = readFileSync(join(REPO_ROOT, file), 'utf8');
      assert.match(text, /make BRANCH="\$BRANCH" STAMP="\$STAMP" all release publish/, file);
      assert.match(text, /buildimage (prepare|build) --config buildimage\.json -d "myservice-pkg-\$STAMP\.tar\.gz" "\$@"/, file);
      assert.match(text, /rootdir=\$\(make -s --no-print-directory "print-\$\{AGENT\}_PREBUILT_ROOTDIR"/, file);
      assert.match(text, /set -- "\$@" --add "\$rootdir=\$tarball"/, file);
      assert.match(text, /when \{\s+anyOf \{\s+branch 'master'\s+branch 'release-\*'\s+triggeredBy 'UserIdCause'\s+\}\s+\}/, file);
      assert.doesNotMatch(text, /BRANCH_NAME" \| tr/, `${file}: no raw BRANCH_NAME in the stamp`);
    }
    for (const id of ['prepare', 'build']) assert.ok(commands.get(id)!.add, `${id} --add`);
  });

  it('the stamp stage makes eng\'s STAMP: the third /-field of the branch, -g<sha> from git describe, -dirty', async function () {
    if (!haveGroovy()) {
      if (process.env.CI) assert.fail('groovy is not installed (scripts/setup-host.sh installs it)');
      this.skip();
    }
    const repo = join(dir, 'stamp-repo');
    const git = (...a: string[]) =>
      execFileSync('git', ['-C', repo, ...a], { encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } }).trim();
    execFileSync('git', ['init', '-q', '-b', 'release-20240101', repo]);
    await writeFile(join(repo, 'f'), '1\n');
    git('add', 'f');
    git('commit', '-q', '-m', 'one');
    const short = git('rev-parse', '--short', 'HEAD');
    for (const kind of ['stages', 'single'] as const) {
      const file = join(dir, `stamp-${kind}.Jenkinsfile`);
      await writeFile(file, renderJenkinsfile(kind, EXAMPLE_VALUES));
      const tree = parseJenkinsfile(file);
      const stamp = async (jenkinsEnv: Record<string, string>) => {
        const r = await runJenkinsfile(tree, {
          workspace: repo, agentEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, jenkinsEnv, causes: [], credentials: {}, only: ['stamp'],
        });
        assert.equal(r.result, 'SUCCESS', r.steps.map((s) => s.output).join('\n'));
        return { branch: r.env.BRANCH, stamp: r.env.STAMP };
      };
      // On a branch, no BRANCH_NAME (eng: git symbolic-ref HEAD).
      let s = await stamp({});
      assert.equal(s.branch, 'release-20240101', kind);
      assert.match(s.stamp, new RegExp(`^release-20240101-\\d{8}T\\d{6}Z-g${short}$`), kind);
      // Jenkins: a detached HEAD, the branch in BRANCH_NAME; a "/" in it.
      git('checkout', '-q', '--detach');
      s = await stamp({ BRANCH_NAME: 'feature/x' });
      assert.equal(s.branch, 'feature', kind);
      assert.match(s.stamp, new RegExp(`^feature-\\d{8}T\\d{6}Z-g${short}$`), kind);
      // A changed tracked file.
      await writeFile(join(repo, 'f'), '2\n');
      s = await stamp({ BRANCH_NAME: 'master' });
      assert.match(s.stamp, new RegExp(`^master-\\d{8}T\\d{6}Z-g${short}-dirty$`), kind);
      git('checkout', '-q', '-f', 'release-20240101');
    }
  });

  it('init writes the definition with the default base and refuses to overwrite', async () => {
    const def = JSON.parse(readFileSync(join(dir, 'buildimage.json'), 'utf8'));
    assert.equal(def.image, DEFAULT_BASE);
    await assert.rejects(init({ dir, template: 'plain', jenkinsfile: 'single', imageVer: '1', pi: '2', force: false }), /already exist; nothing written/);
  });
});
