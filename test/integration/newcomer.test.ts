/**
 * A newcomer's path through the real CLI on the test world: `init` in a
 * fresh repo, then exactly the commands it prints (doctor, the discrete
 * stages, clean), a local publish as the Jenkinsfile does it, and the
 * one-step build. Every command's --json output parses with its documented
 * schema (src/cli/schemas.ts), errors included.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { z } from 'zod';
import {
  BuildResultSchema,
  CleanResultSchema,
  COMMAND_RESULT_SCHEMAS,
  DoctorResultSchema,
  ErrorResultSchema,
  InitResultSchema,
  PublishResultSchema,
} from '../../src/cli/schemas.js';
import { BIN, cli } from '../helpers/cli.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { world, type World } from '../helpers/world.js';

/** Runs a printed command line as a user would paste it, with `buildimage` being this checkout. */
async function shell(line: string, cwd: string, env: Record<string, string>) {
  const r = await execa('bash', ['-c', `buildimage() { "${BIN}" "$@"; }\n${line}`], { cwd, env, reject: false, timeout: 5 * 60_000 });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

function parseAs<S extends z.ZodTypeAny>(schema: S, stdout: string, what: string): z.infer<S> {
  const parsed = schema.safeParse(JSON.parse(stdout));
  assert.ok(parsed.success, `${what}: ${parsed.success ? '' : JSON.stringify(parsed.error.issues[0])}\n${stdout}`);
  return parsed.data;
}

describe('a newcomer: init, then the commands it prints (CLI, --json)', function () {
  this.timeout(10 * 60 * 1000);
  let w: World;
  let repo: string;
  before(async () => {
    w = await world();
    repo = join(w.dir, 'sdc-hello');
    await mkdir(repo, { recursive: true });
    await execa('git', ['init', '-q', repo]);
    await execa('git', ['-C', repo, 'remote', 'add', 'origin', 'https://github.com/TritonDataCenter/sdc-hello.git']);
  });

  it('goes from init to a sealed, published image; every --json parses with its schema', async () => {
    const env = w.env;
    let r = await cli(['init', '-i', w.origin.uuid, '--description', 'Hello service', '--json'], { cwd: repo, env });
    assert.equal(r.code, 0, r.stderr);
    const initRes = parseAs(InitResultSchema, r.stdout, 'init');
    assert.deepEqual(initRes.written, [join(repo, 'buildimage.json'), join(repo, 'Jenkinsfile')]);
    const def = JSON.parse(await readFile(join(repo, 'buildimage.json'), 'utf8'));
    assert.equal(def.manifest.name, 'hello');
    assert.equal(def['source-repo'], 'https://github.com/TritonDataCenter/sdc-hello.git');
    // What a local build leaves in the repo is ignored by git: .gitignore made with both.
    assert.deepEqual(initRes.gitignore, { path: join(repo, '.gitignore'), added: ['.buildimage/', 'bits/'] });
    assert.match(await readFile(join(repo, '.gitignore'), 'utf8'), /^\.buildimage\/\nbits\/\n$/m);

    // What the newcomer edits: a package and the files of the service.
    def.packages = ['greeter'];
    await writeFile(join(repo, 'buildimage.json'), JSON.stringify(def, null, 2));
    await mkdir(join(repo, 'proto/opt/smartdc/hello'), { recursive: true });
    await writeFile(join(repo, 'proto/opt/smartdc/hello/server.js'), 'console.log("hello")\n');

    const ids: string[] = [];
    for (const line of initRes.next) {
      const id = line.split(' ')[1] as keyof typeof COMMAND_RESULT_SCHEMAS;
      ids.push(id);
      r = await shell(`${line} --json`, repo, env);
      assert.equal(r.code, 0, `${line}\n${r.stdout}\n${r.stderr}`);
      parseAs(COMMAND_RESULT_SCHEMAS[id], r.stdout, line);
      if (id === 'doctor') assert.equal(parseAs(DoctorResultSchema, r.stdout, line).ok, true);
      if (id === 'seal') {
        const sealed = parseAs(BuildResultSchema, r.stdout, line);
        assert.deepEqual(sealed.completed, ['prepare', 'assemble', 'pkgadd', 'seal']);
        const outputs = sealed.image!.outputs;
        assert.match(outputs.image, new RegExp(`^${repo}/bits/hello/hello-zfs-dev-\\d{8}T\\d{6}Z\\.zfs\\.gz$`));
        const info = JSON.parse(await readFile(outputs.buildInfo!, 'utf8'));
        assert.deepEqual(info.inputs.packages, ['greeter']);
      }
    }
    assert.deepEqual(ids, ['doctor', 'prepare', 'assemble', 'pkgadd', 'seal', 'clean']);

    // Publish as the Jenkinsfile does, to a directory instead of Manta.
    const state = join(repo, '.buildimage/state.json');
    const stamp = 'master-20240101T000000Z-g0123abc';
    const dest = join(w.dir, 'published');
    const pub = ['publish', '-L', '-b', 'master', '-n', 'hello', '-t', stamp, '-d', dest, '-D', 'bits', '--state', state, '--json'];
    r = await cli([...pub, '--dry-run'], { cwd: repo, env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(parseAs(PublishResultSchema, r.stdout, 'publish --dry-run').dryRun, true);
    r = await cli(pub, { cwd: repo, env });
    assert.equal(r.code, 0, r.stderr);
    const published = parseAs(PublishResultSchema, r.stdout, 'publish');
    assert.equal(published.destination, join(dest, stamp));
    const files = await readdir(join(dest, stamp, 'hello'));
    for (const suffix of ['.zfs.gz', '.imgmanifest', '.packages.json', '.pkgaudit', '.build-info.json']) {
      assert.ok(files.some((f) => f.endsWith(suffix)), `${suffix} published: ${files.join(', ')}`);
    }

    // post { always }: a no-op now, and fine when there never was a state file.
    r = await cli(['clean', '--state', state, '--missing-ok', '--json'], { cwd: repo, env });
    assert.equal(r.code, 0, r.stderr);
    parseAs(CleanResultSchema, r.stdout, 'clean');
    r = await cli(['clean', '--state', join(repo, 'nope.json'), '--missing-ok', '--json'], { cwd: repo, env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(parseAs(CleanResultSchema, r.stdout, 'clean').destroyed, []);
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, images: [w.base.uuid, w.origin.uuid] });
  });

  it('init from another directory: paths as seen from there (quoted), the dataset root the commands need, .gitignore entries', async () => {
    // No dataset root in the environment, as on a fresh Linux machine.
    const env: Record<string, string> = { ...w.env, BUILDIMAGE_DATASET_ROOT: '' };
    const repo2 = join(w.dir, 'my repo');
    await mkdir(repo2, { recursive: true });
    await writeFile(join(repo2, '.gitignore'), 'node_modules\n/bits');
    let r = await cli(['init', 'my repo', '-n', 'hello2', '--image', w.origin.uuid], { cwd: w.dir, env });
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout.split('\n');
    assert.ok(out.includes("next: edit my repo/buildimage.json (packages, description), put the image's files in my repo/proto/, then try it:"), r.stdout);
    const next = out.filter((l) => l.startsWith('  buildimage ') || l.startsWith('  export ')).map((l) => l.trim());
    assert.match(next[0], /^export BUILDIMAGE_DATASET_ROOT=\S+\/buildimage$/);
    assert.equal(next[1], `buildimage doctor -i ${w.origin.uuid} --output-dir 'my repo/bits/hello2'`);
    assert.match(next[2], / --config 'my repo\/buildimage\.json' .* --state 'my repo\/\.buildimage\/state\.json'$/);
    assert.ok(out.includes(`  added .buildimage/ to ${join(repo2, '.gitignore')}`), r.stdout);
    // The export and doctor lines as printed, the export naming the test's dataset root: doctor is satisfied.
    const exportLine = next[0].replace(/=.*/, `=${w.datasetRoot}`);
    const doctor = await shell(`${exportLine}\n${next[1]} --json`, w.dir, env);
    assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
    assert.equal(parseAs(DoctorResultSchema, doctor.stdout, 'doctor').ok, true);

    // The entries once, whatever the existing file had; a second init (-f, --base as before) adds none.
    assert.equal(await readFile(join(repo2, '.gitignore'), 'utf8'), "node_modules\n/bits\n# buildimage: a local build's state and outputs\n.buildimage/\n");
    r = await cli(['init', 'my repo', '-n', 'hello2', '--base', w.origin.uuid, '-f', '--json'], { cwd: w.dir, env: w.env });
    assert.equal(r.code, 0, r.stderr);
    const again = parseAs(InitResultSchema, r.stdout, 'init again');
    assert.deepEqual(again.gitignore, { path: join(repo2, '.gitignore'), added: [] });
    assert.equal(again.next[0], `buildimage doctor -i ${w.origin.uuid} --output-dir 'my repo/bits/hello2'`, 'BUILDIMAGE_DATASET_ROOT set: no export');
    assert.equal(JSON.parse(await readFile(join(repo2, 'buildimage.json'), 'utf8')).image, w.origin.uuid);
  });

  it('the one-step variant (build --config) and errors as JSON', async () => {
    const env = w.env;
    const out = await w.outDir();
    let r = await cli(['build', '--config', join(repo, 'buildimage.json'), '--image-version', '2.0.0', '--output-dir', out, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    const built = parseAs(BuildResultSchema, r.stdout, 'build');
    assert.equal(built.image!.outputs.manifest, join(out, 'hello-zfs-2.0.0.imgmanifest'));
    const manifest = JSON.parse(await readFile(built.image!.outputs.manifest, 'utf8'));
    assert.equal(manifest.description, 'Hello service');
    assert.deepEqual(manifest.tags, { smartdc_service: true });

    // A state file that is not there: exit 2, one JSON error with a hint.
    r = await cli(['seal', '--state', join(repo, 'none.json'), '--json'], { env });
    assert.equal(r.code, 2);
    const err = parseAs(ErrorResultSchema, r.stdout, 'seal error');
    assert.equal(err.error.exitCode, 2);
    assert.match(err.error.hint!, /buildimage prepare/);
    // A bad config: exit 2, the key named.
    await writeFile(join(repo, 'bad.json'), JSON.stringify({ image: w.origin.uuid, pakages: ['x'] }));
    r = await cli(['build', '--config', join(repo, 'bad.json'), '--json'], { env });
    assert.equal(r.code, 2);
    assert.match(parseAs(ErrorResultSchema, r.stdout, 'config error').error.message, /unknown key "pakages"/);
    // init refuses to overwrite.
    r = await cli(['init', '--json'], { cwd: repo, env });
    assert.equal(r.code, 2);
    assert.match(parseAs(ErrorResultSchema, r.stdout, 'init error').error.message, /already exist/);
  });
});
