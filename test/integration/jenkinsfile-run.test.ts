/**
 * The Jenkinsfile examples run as a Jenkins agent runs them: each example,
 * rendered for a sample Triton component (testbed/component: eng's targets,
 * `buildimage init`'s files, agents' prebuilt tarballs), parsed by Groovy,
 * its `sh` steps in order with Jenkins' environment (BRANCH_NAME, BUILD_URL,
 * WORKSPACE, …) in a fresh clone on a detached HEAD, against the test world
 * (real ZFS, sample images, pkgsrc repository) and the local Manta and
 * IMGAPI servers (the public endpoints in `environment` replaced by them).
 * What got published is read back from the servers: eng's bits layout with
 * the release tarball and prepublish's files, the image in its channel; a
 * feature branch publishes nothing.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { EXAMPLE_VALUES, renderJenkinsfile, type JenkinsValues } from '../../src/setup/init.js';
import { parsePublicKeyLine, sha256Fingerprint } from '../../src/http/signature.js';
import type { ImageManifest } from '../../src/image/manifest/types.js';
import { makeSampleComponent, type SampleComponent } from '../../testbed/component.js';
import { BIN, cli } from '../helpers/cli.js';
import { haveGroovy, parseJenkinsfile, runJenkinsfile, type JobOptions, type JobResult } from '../helpers/jenkins.js';
import { assertNoLeaks } from '../helpers/leaks.js';
import { findAll, parseXml } from '../helpers/xml.js';
import { verifyPoolWithChain, world, type World } from '../helpers/world.js';
import { mountAdminApi } from '../servers/imgapi-admin.js';
import { startImgapiServer, type ImgapiTestServer } from '../servers/imgapi-server.js';
import { MantaTestServer } from '../servers/manta-server.js';
import { haveBinary, nodeRsaKey, sshKeygen } from '../servers/ssh-keys.js';
import { selfSignedCert } from '../servers/tls.js';

const USER = 'Joyent_Dev';
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

describe('the Jenkinsfile examples, run as Jenkins runs them (integration)', function () {
  this.timeout(20 * 60 * 1000);
  let w: World;
  let dir: string;
  let comp: SampleComponent;
  let manta: MantaTestServer;
  let imgapi: ImgapiTestServer;
  let base: JobOptions;
  const files: Record<'stages' | 'single' | 'publish-rerun' | 'multi', string> = { stages: '', single: '', 'publish-rerun': '', multi: '' };
  let runs = 0;
  const BASE = `/${USER}/public/builds/sample`;

  before(async function () {
    if (!haveGroovy() || !haveBinary('ssh-keygen') || !haveBinary('ssh-agent')) {
      if (process.env.CI) assert.fail('groovy, ssh-keygen and ssh-agent are needed (scripts/setup-host.sh installs them)');
      this.skip();
    }
    w = await world();
    dir = join(w.dir, 'jenkins');
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    comp = await makeSampleComponent(dir, {
      base: w.origin.uuid,
      packages: ['greeter'],
      init: async (repo) => {
        const r = await cli(['init', '-i', w.origin.uuid, '--json'], { cwd: repo, env: w.env });
        assert.equal(r.code, 0, r.stderr);
      },
    });
    const values: JenkinsValues = { ...EXAMPLE_VALUES, name: comp.name };
    for (const kind of Object.keys(files) as (keyof typeof files)[]) {
      files[kind] = join(dir, `${kind}.Jenkinsfile`);
      await writeFile(files[kind], renderJenkinsfile(kind, values));
    }
    // The component's own Jenkinsfile is init's, the stages example.
    assert.equal(await readFile(join(comp.repo, 'Jenkinsfile'), 'utf8'), await readFile(files.stages, 'utf8'));

    const tls = await selfSignedCert();
    const mantaKey = await sshKeygen(dir, 'manta_key', 'rsa', { bits: 2048 });
    const imgapiKey = nodeRsaKey();
    manta = await MantaTestServer.start({ [USER]: { keys: [mantaKey.pubLine] } }, { tls });
    imgapi = await startImgapiServer();
    mountAdminApi(imgapi, { authkeys: { mg: [imgapiKey.pubLine] }, fileUrlCa: tls.cert });
    const read = async (stem: string) => JSON.parse(await readFile(join(w.sampleDir, `${stem}.imgmanifest`), 'utf8')) as ImageManifest;
    const channels = ['dev', 'staging', 'experimental'];
    await imgapi.addImage(await read('minimal-64-lts-sample-24.4.1'), join(w.sampleDir, 'minimal-64-lts-sample-24.4.1.zfs.gz'), { channels });
    await imgapi.addImage(await read('triton-origin-sample-24.4.1'), join(w.sampleDir, 'triton-origin-sample-24.4.1.zfs.gz'), { channels });

    // The agent: buildimage on PATH, this machine's dataset root and work
    // dir, eng's agent cache and download dir; a HOME with no keys (they
    // come from Jenkins' credentials).
    const home = join(dir, 'home');
    await mkdir(join(home, '.ssh'), { recursive: true });
    const binDir = join(BIN, '..');
    base = {
      workspace: '',
      agentEnv: {
        ...w.env,
        PATH: `${binDir}:${process.env.PATH}`,
        HOME: home,
        AGENT_PREBUILT_DOWNLOAD_URL: comp.agentsDir,
        AGENT_PREBUILT_DIR: join(dir, 'agent-cache'),
        // The test Manta's certificate is self-signed.
        MANTA_TLS_INSECURE: '1',
        LANG: 'C',
      },
      jenkinsEnv: {},
      causes: [],
      credentials: {
        'manta-key': { kind: 'ssh', keyFile: mantaKey.path },
        'manta-key-id': { kind: 'text', value: sha256Fingerprint(parsePublicKeyLine(mantaKey.pubLine).blob) },
        'updates-imgadm-key': { kind: 'file', content: imgapiKey.pem },
      },
      overrides: { MANTA_URL: manta.url, UPDATES_IMGADM_URL: imgapi.url },
    };
  });

  after(async () => {
    await manta?.close();
    await imgapi?.close();
  });

  /** A multibranch job's build of `branch`: a fresh clone checked out on a detached HEAD, as Jenkins does. */
  async function job(kind: keyof typeof files, branch: string, o: { causes?: string[]; params?: Record<string, string | boolean> } = {}): Promise<JobResult & { ws: string; sha: string }> {
    const n = ++runs;
    const ws = join(dir, `ws-${n}`);
    await execa('git', ['clone', '-q', comp.repo, ws]);
    const sha = String((await execa('git', ['-C', ws, 'rev-parse', `origin/${branch}`])).stdout);
    await execa('git', ['-C', ws, 'checkout', '-q', '--detach', sha]);
    const enc = encodeURIComponent(encodeURIComponent(branch));
    const jobName = `TritonDataCenter/sdc-sample/${enc}`;
    const r = await runJenkinsfile(parseJenkinsfile(files[kind]), {
      ...base,
      workspace: ws,
      // Another agent's checkout: the same commit, detached.
      checkout: async (into) => {
        await execa('git', ['clone', '-q', comp.repo, into]);
        await execa('git', ['-C', into, 'checkout', '-q', '--detach', sha]);
      },
      jenkinsEnv: {
        BRANCH_NAME: branch,
        BUILD_NUMBER: String(n),
        BUILD_ID: String(n),
        BUILD_DISPLAY_NAME: `#${n}`,
        JOB_NAME: jobName,
        JOB_BASE_NAME: enc,
        BUILD_TAG: `jenkins-${jobName.replace(/\//g, '-')}-${n}`,
        JENKINS_URL: 'https://jenkins.example.com/',
        BUILD_URL: `https://jenkins.example.com/job/TritonDataCenter/job/sdc-sample/job/${enc}/${n}/`,
        JOB_URL: `https://jenkins.example.com/job/TritonDataCenter/job/sdc-sample/job/${enc}/`,
        NODE_NAME: 'jenkins-agent-1',
        NODE_LABELS: 'image_ver:21.4.0 pkgsrc_arch:x86_64',
        EXECUTOR_NUMBER: '0',
        GIT_COMMIT: sha,
        GIT_BRANCH: branch,
      },
      causes: o.causes ?? ['BranchEventCause'],
      params: o.params,
    });
    return { ...r, ws, sha };
  }

  function explain(r: JobResult): string {
    return r.steps.map((s) => `--- ${s.stage} (exit ${s.code})\n${s.script}\n${s.output.slice(-3000)}`).join('\n');
  }

  const writes = (): number => manta.puts().length;

  it('the stages example on master: eng\'s bits (release tarball, prepublish files, image) in Manta, the image in dev; the proto is the release and agent tarballs', async () => {
    const r = await job('stages', 'master');
    assert.equal(r.result, 'SUCCESS', explain(r));
    assert.deepEqual(r.stages, { check: 'ran', 're-clean': 'ran', stamp: 'ran', proto: 'ran', prepare: 'ran', assemble: 'ran', pkgadd: 'ran', seal: 'ran', publish: 'ran' });
    const stamp = r.env.STAMP;
    const short = String((await execa('git', ['-C', r.ws, 'rev-parse', '--short', r.sha])).stdout);
    assert.match(stamp, /^master-\d{8}T\d{6}Z-g[0-9a-f]{7,}$/);
    assert.ok(stamp.endsWith(`-g${short}`), `${stamp} ends with -g${short}`);

    const dest = `${BASE}/${stamp}`;
    const objects = manta.list(dest).filter((p) => manta.entry(p)?.type === 'object');
    const want = [
      `sample/sample-pkg-${stamp}.tar.gz`,
      'sample/latest-build-stamp',
      'sample/build-environment',
      'sample/npm-ls.json',
      ...['zfs.gz', 'imgmanifest', 'pkgaudit', 'audit.junit.xml', 'packages.json', 'build-info.json', 'provenance.dsse.json', 'contents.json.gz', 'cdx.json', 'spdx.json'].map((s) => `sample/sample-zfs-${stamp}.${s}`),
      'md5sums.txt',
      'SHA256SUMS',
    ].map((p) => `${dest}/${p}`);
    assert.deepEqual(objects, want.sort());
    // Issue 15, item 6: the SBOMs go up beside the image, with their media types.
    assert.equal((manta.entry(`${dest}/sample/sample-zfs-${stamp}.cdx.json`) as { contentType?: string } | undefined)?.contentType, 'application/vnd.cyclonedx+json');
    assert.equal((manta.entry(`${dest}/sample/sample-zfs-${stamp}.spdx.json`) as { contentType?: string } | undefined)?.contentType, 'application/spdx+json');
    assert.equal((await manta.read(`${dest}/sample/latest-build-stamp`)).toString(), `${stamp}\n`);
    const tarball = await readFile(join(r.ws, `sample-pkg-${stamp}.tar.gz`));
    assert.equal(md5(await manta.read(`${dest}/sample/sample-pkg-${stamp}.tar.gz`)), md5(tarball), 'the release tarball as make release made it');
    assert.equal((await manta.read(`${BASE}/master-latest`)).toString(), `${dest}\n`);
    assert.equal(manta.entry(`${BASE}/latest-release`), undefined);

    const manifest = JSON.parse((await manta.read(`${dest}/sample/sample-zfs-${stamp}.imgmanifest`)).toString()) as ImageManifest;
    assert.equal(manifest.version, stamp);
    const stored = imgapi.store.get(manifest.uuid);
    assert.ok(stored, 'imported into the updates IMGAPI');
    assert.deepEqual(stored.raw.channels, ['dev']);
    assert.equal(stored.raw.activated, true);

    // The agents: the newest master tarballs, fetched as eng does, not extracted by the pipeline; each with eng's
    // AGENT_PREBUILT_ROOTDIR (waferlock's tarball has no root/: it goes whole under root/opt/smartdc, as config-agent's).
    const agents = (await readFile(join(r.ws, '.buildimage/agents'), 'utf8')).trim().split('\n');
    assert.deepEqual(agents.map((a) => [a.slice(0, a.indexOf('=')), a.split('/').pop()]), [['', comp.agents.registrar.master], ['root/opt/smartdc', comp.agents.waferlock.master]]);

    // What the image holds: the release tarball's root/ (after re-clean: no dev-only module) and the agents.
    const mnt = join(dir, 'rx-mnt');
    const rx = await verifyPoolWithChain(w);
    try {
      await rx.receive(join(r.ws, `bits/sample/sample-zfs-${stamp}.zfs.gz`), manifest.uuid, mnt);
      const root = join(mnt, 'root');
      assert.equal(await readFile(join(root, 'opt/smartdc/sample/stamp'), 'utf8'), `${stamp}\n`);
      assert.ok((await lstat(join(root, 'opt/smartdc/sample/server/main.js'))).isFile());
      assert.ok((await lstat(join(root, 'opt/smartdc/sample/node_modules/prodonly/index.js'))).isFile());
      await assert.rejects(lstat(join(root, 'opt/smartdc/sample/node_modules/devonly')), 'make check\'s module was cleaned');
      await assert.rejects(lstat(join(root, 'site')), 'only root/ is the image');
      // registrar from its root/, waferlock (no root/) whole under /opt/smartdc.
      for (const agent of ['registrar', 'waferlock']) assert.equal(await readFile(join(root, 'opt/smartdc', agent, 'branch'), 'utf8'), 'master\n');
      await assert.rejects(lstat(join(root, 'waferlock')), 'waferlock went under /opt/smartdc, not /');
      assert.ok((await lstat(join(root, 'opt/local/pkg/greeter-1.1/+CONTENTS'))).isFile(), 'buildimage.json\'s package');
    } finally {
      await rx.destroy();
      await rm(mnt, { recursive: true, force: true });
    }
    assert.ok(r.recorded.includes('post always: archiveArtifacts'));
    // Jenkins' test view gets the pkg audit: the junit step finds the report seal wrote.
    assert.deepEqual(r.junit.map((j) => j.path), [`bits/sample/sample-zfs-${stamp}.audit.junit.xml`]);
    const suite = findAll(parseXml(r.junit[0].text), 'testsuite')[0];
    assert.ok(suite && findAll(suite, 'testcase').length >= 1, 'a testsuite with at least one case');
  });

  it('a feature branch (feature/x) builds with a stamp without "/" and publishes nothing', async () => {
    const before = { writes: writes(), objects: manta.list(`/${USER}`).length, images: imgapi.store.size };
    const r = await job('stages', 'feature/x');
    assert.equal(r.result, 'SUCCESS', explain(r));
    assert.equal(r.stages.seal, 'ran');
    assert.equal(r.stages.publish, 'skipped');
    assert.equal(r.env.BRANCH, 'feature', 'eng: the third /-field of refs/heads/feature/x');
    assert.match(r.env.STAMP, /^feature-\d{8}T\d{6}Z-g[0-9a-f]{7,}$/);
    const bits = await readdir(join(r.ws, 'bits/sample'));
    assert.ok(bits.includes(`sample-zfs-${r.env.STAMP}.zfs.gz`), bits.join(' '));
    assert.ok(bits.includes(`sample-pkg-${r.env.STAMP}.tar.gz`));
    assert.deepEqual({ writes: writes(), objects: manta.list(`/${USER}`).length, images: imgapi.store.size }, before);
  });

  it('the single-step example on release-20240101: release agents, staging, latest-release', async () => {
    const r = await job('single', 'release-20240101');
    assert.equal(r.result, 'SUCCESS', explain(r));
    assert.equal(r.stages.upload, 'ran');
    const stamp = r.env.STAMP;
    assert.match(stamp, /^release-20240101-\d{8}T\d{6}Z-g[0-9a-f]{7,}$/);
    const dest = `${BASE}/${stamp}`;
    assert.equal((await manta.read(`${BASE}/release-20240101-latest`)).toString(), `${dest}\n`);
    assert.equal((await manta.read(`${BASE}/latest-release`)).toString(), `${dest}\n`);
    for (const f of [`sample-pkg-${stamp}.tar.gz`, 'latest-build-stamp', 'build-environment', 'npm-ls.json', `sample-zfs-${stamp}.zfs.gz`]) {
      assert.equal(manta.entry(`${dest}/sample/${f}`)?.type, 'object', f);
    }
    const agents = (await readFile(join(r.ws, '.buildimage/agents'), 'utf8')).trim().split('\n');
    assert.deepEqual(agents.map((a) => [a.slice(0, a.indexOf('=')), a.split('/').pop()]), [['', comp.agents.registrar['release-20240101']], ['root/opt/smartdc', comp.agents.waferlock['release-20240101']]]);
    const manifest = JSON.parse(await readFile(join(r.ws, `bits/sample/sample-zfs-${stamp}.imgmanifest`), 'utf8')) as ImageManifest;
    assert.deepEqual(imgapi.store.get(manifest.uuid)?.raw.channels, ['staging']);
  });

  it('a manual run of a feature branch publishes, to experimental', async () => {
    const r = await job('single', 'feature/x', { causes: ['UserIdCause'] });
    assert.equal(r.result, 'SUCCESS', explain(r));
    const dest = `${BASE}/${r.env.STAMP}`;
    assert.equal((await manta.read(`${BASE}/feature-latest`)).toString(), `${dest}\n`);
    const manifest = JSON.parse(await readFile(join(r.ws, `bits/sample/sample-zfs-${r.env.STAMP}.imgmanifest`), 'utf8')) as ImageManifest;
    assert.deepEqual(imgapi.store.get(manifest.uuid)?.raw.channels, ['experimental']);
  });

  it('the multi example (issue 16): plan, a parallel branch per image on an agent of its own, the bits stashed, collected and published once', async () => {
    // The component grows a definition with three images (a branch of its own), each image's files in the repository.
    const git = (...a: string[]) =>
      execa('git', ['-C', comp.repo, ...a], { env: { GIT_AUTHOR_NAME: 'S', GIT_AUTHOR_EMAIL: 's@e', GIT_COMMITTER_NAME: 'S', GIT_COMMITTER_EMAIL: 's@e' } });
    await git('checkout', '-q', '-b', 'multi', 'master');
    const def = JSON.parse(await readFile(join(comp.repo, 'buildimage.json'), 'utf8')) as Record<string, unknown>;
    delete def.dir;
    delete def.prefix;
    const images = [
      { name: 'sample', dir: 'images/sample', manifest: { name: 'sample' } },
      { name: 'sample-worker', dir: 'images/worker', manifest: { name: 'sample-worker', description: 'the worker' }, packages: [] },
      { name: 'sample-edge', dir: 'images/edge', manifest: { name: 'sample-edge' }, image: w.base.uuid, packages: [] },
    ];
    for (const i of images) {
      await mkdir(join(comp.repo, i.dir, 'opt/smartdc', i.name), { recursive: true });
      await writeFile(join(comp.repo, i.dir, 'opt/smartdc', i.name, 'main.js'), `// ${i.name}\n`);
    }
    await writeFile(join(comp.repo, 'buildimage.json'), JSON.stringify({ ...def, images }, null, 2) + '\n');
    await git('add', '-A');
    await git('commit', '-q', '-m', 'three images');
    await git('checkout', '-q', 'master');

    const r = await job('multi', 'multi', { causes: ['UserIdCause'] });
    assert.equal(r.result, 'SUCCESS', explain(r));
    assert.deepEqual(r.stages, { stamp: 'ran', plan: 'ran', 'build images': 'ran', collect: 'ran', publish: 'ran' });
    const stamp = r.env.STAMP;
    // Each image built by its own agent: three workspaces besides the job's, each one `buildimage build --only`.
    assert.equal(r.nodes.length, 3);
    const builds = r.steps.filter((s) => s.stage === 'build images' && s.script.includes('buildimage build'));
    assert.deepEqual(builds.map((s) => s.workspace).sort(), r.nodes.map((n) => n.workspace).sort());
    for (const b of builds) assert.equal(b.code, 0, b.output.slice(-3000));
    assert.deepEqual(Object.keys(r.stashes).sort(), images.map((i) => `bits-${i.name}`).sort());
    for (const i of images) {
      assert.ok(r.stashes[`bits-${i.name}`].includes(`bits/sample/${i.name}-zfs-${stamp}.zfs.gz`), JSON.stringify(r.stashes));
      assert.ok(!r.stashes[`bits-${i.name}`].some((f) => !f.includes(`/${i.name}-zfs-`)), 'an agent stashes its own image only');
    }
    // One publish of all of them: each image in Manta and imported into the updates IMGAPI (a manual run: experimental).
    const dest = `${BASE}/${stamp}`;
    assert.equal((await manta.read(`${BASE}/multi-latest`)).toString(), `${dest}\n`);
    for (const i of images) {
      const m = JSON.parse((await manta.read(`${dest}/sample/${i.name}-zfs-${stamp}.imgmanifest`)).toString()) as ImageManifest;
      assert.equal(m.name, i.name);
      assert.equal(m.version, stamp);
      assert.equal(m.origin, i.image ?? w.origin.uuid);
      assert.deepEqual(imgapi.store.get(m.uuid)?.raw.channels, ['experimental']);
    }
    assert.equal(manta.entry(`${dest}/sample/sample-pkg-${stamp}.tar.gz`)?.type, 'object', 'make publish: the release tarball beside them');
    const plan = JSON.parse(await readFile(join(r.ws, '.buildimage/plan.json'), 'utf8')) as { images: Array<{ name: string; stem: string }> };
    assert.deepEqual(plan.images.map((i) => [i.name, i.stem]), images.map((i) => [i.name, `${i.name}-zfs-${stamp}`]));
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, images: [w.base.uuid, w.origin.uuid] });
  });

  it('the publish-rerun example: a dry run, then a rerun that finds everything published', async () => {
    const first = join(dir, 'ws-1', 'bits');
    const before = writes();
    const ws = join(dir, 'ws-rerun');
    await mkdir(ws, { recursive: true });
    const run = (params: Record<string, string | boolean>) =>
      runJenkinsfile(parseJenkinsfile(files['publish-rerun']), {
        ...base,
        workspace: ws,
        jenkinsEnv: { BUILD_NUMBER: '1', BUILD_URL: 'https://jenkins.example.com/job/sample-publish/1/', JOB_NAME: 'sample-publish', NODE_NAME: 'jenkins-agent-1' },
        causes: ['UserIdCause'],
        params: { NODE: 'jenkins-agent-1', BITS_DIR: first, ...params },
      });
    let r = await run({});
    assert.equal(r.result, 'SUCCESS', explain(r));
    assert.deepEqual(r.stages, { plan: 'ran', publish: 'skipped' });
    r = await run({ DRY_RUN: false });
    assert.equal(r.result, 'SUCCESS', explain(r));
    const res = JSON.parse(await readFile(join(ws, 'publish-result.json'), 'utf8')) as { uploaded: number; skipped: number };
    assert.equal(res.uploaded, 0);
    assert.ok(res.skipped >= 9, JSON.stringify(res));
    assert.equal(writes(), before, 'nothing written again');
    await assertNoLeaks({ datasetRoot: w.datasetRoot, workDir: w.workDir, images: [w.base.uuid, w.origin.uuid] });
  });
});
