/**
 * Runs a declarative Jenkinsfile the way a Jenkins agent would, for the
 * subset our examples use: the tree comes from Groovy (JenkinsfileTree.groovy,
 * the parser Jenkins uses), the `sh` steps run in order as Jenkins runs them
 * (`sh -xe` in WORKSPACE, the job's environment), `when` decides which
 * stages run, `post` runs after a failure too. Credentials are real: the
 * `sshagent` key goes into a real ssh-agent, `withCredentials` files are
 * written out. Anything outside the subset throws, so a template cannot grow
 * a step this runner would silently skip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { REPO } from './cli.js';
import { startSshAgent, type TestAgent } from '../servers/ssh-keys.js';

type Node =
  | { k: 'const'; v: unknown }
  | { k: 'gstring'; strings: string[]; values: Node[] }
  | { k: 'var'; name: string }
  | { k: 'prop'; object: Node; name: string }
  | { k: 'call'; name: string; object: Node | null; args: Node[]; named: Record<string, Node>; closure: Node[] | null }
  | { k: 'closure'; body: Node[] }
  | { k: 'map'; entries: Record<string, Node> }
  | { k: 'list'; items: Node[] }
  | { k: 'binary'; op: string; left: Node; right: Node }
  | { k: 'not'; expr: Node }
  | { k: 'other'; text: string };
type Call = Extract<Node, { k: 'call' }>;

export type Credential = { kind: 'text'; value: string } | { kind: 'file'; content: string } | { kind: 'ssh'; keyFile: string };

export interface JobOptions {
  workspace: string;
  /** The agent's own environment (PATH, machine settings); the pipeline's `environment` goes over it. */
  agentEnv: Record<string, string>;
  /** What Jenkins sets for a multibranch job: BRANCH_NAME, BUILD_NUMBER, BUILD_URL, JOB_NAME, … (WORKSPACE is added). */
  jenkinsEnv: Record<string, string>;
  /** Build causes, e.g. ['BranchEventCause'] or ['UserIdCause']. */
  causes: string[];
  params?: Record<string, string | boolean>;
  credentials: Record<string, Credential>;
  /**
   * Values that win over the pipeline's `environment` (this deployment's
   * endpoints: the local Manta and IMGAPI instead of the public ones).
   */
  overrides?: Record<string, string>;
  /** Run only these stages (and no post): for a test of one stage's steps. */
  only?: string[];
}

export interface StepLog {
  stage: string;
  script: string;
  code: number;
  output: string;
}

export interface JobResult {
  result: 'SUCCESS' | 'FAILURE';
  stages: Record<string, 'ran' | 'skipped' | 'failed' | 'not run'>;
  steps: StepLog[];
  /** Non-sh steps seen (archiveArtifacts, joySlackNotifications), by stage. */
  recorded: string[];
  /** What `junit testResults: GLOB` collected: workspace-relative paths and each file's text. */
  junit: Array<{ path: string; text: string }>;
  /** The job's environment at the end (what `env.X = …` set). */
  env: Record<string, string>;
}

class StepFailed extends Error {}

/** Workspace files an Ant-style glob (`**`, `*`, `,`-separated) matches, as relative paths. */
async function matching(workspace: string, globs: string): Promise<string[]> {
  const res = globs.split(',').map((g) => new RegExp('^' + g.trim().split('**/').map((part) => part.split('*').map((t) => t.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')).join('(?:.*/)?') + '$'));
  const files = (await readdir(workspace, { recursive: true, withFileTypes: true })).filter((d) => d.isFile());
  return files.map((d) => join(d.parentPath ?? (d as unknown as { path: string }).path, d.name).slice(workspace.length + 1)).filter((f) => res.some((r) => r.test(f))).sort();
}

function javaHome(): string | undefined {
  if (existsSync('/usr/lib/jvm/default-java/bin/java')) return '/usr/lib/jvm/default-java';
  const java = spawnSync('sh', ['-c', 'command -v java'], { encoding: 'utf8' }).stdout.trim();
  return java ? realpathSync(java).replace(/\/bin\/java$/, '') : undefined;
}

/** Whether Groovy can run here (CI installs it: scripts/setup-host.sh). */
export function haveGroovy(): boolean {
  return !!spawnSync('sh', ['-c', 'command -v groovy'], { encoding: 'utf8' }).stdout.trim() && !!javaHome();
}

/** The pipeline tree of a Jenkinsfile, as Groovy parses it. */
export function parseJenkinsfile(file: string): Call {
  const out = execFileSync('groovy', [join(REPO, 'test/helpers/JenkinsfileTree.groovy'), file], {
    env: { ...process.env, JAVA_HOME: javaHome() },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return JSON.parse(out) as Call;
}

function section(c: Call, name: string): Call | undefined {
  return (c.closure ?? []).find((n): n is Call => n.k === 'call' && n.name === name);
}

function calls(body: Node[] | null): Call[] {
  return (body ?? []).map((n) => {
    if (n.k !== 'call') throw new Error(`unsupported statement ${JSON.stringify(n)}`);
    return n;
  });
}

/** Ant-style glob, as the `branch` condition compares (`*` stays within one path segment). */
function globRe(glob: string): RegExp {
  const re = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*/g, '\0').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\0/g, '.*');
  return new RegExp(`^${re}$`);
}

export async function runJenkinsfile(pipeline: Call, o: JobOptions): Promise<JobResult> {
  const env: Record<string, string> = { ...o.agentEnv, ...o.jenkinsEnv, WORKSPACE: o.workspace };
  const params: Record<string, string | boolean> = {};
  const res: JobResult = { result: 'SUCCESS', stages: {}, steps: [], recorded: [], junit: [], env };
  const tmp = await mkdtemp(join(tmpdir(), 'bi-jenkins-job-'));
  let current = '(pipeline)';

  const str = (n: Node, scope: Record<string, string>): string => {
    const v = value(n, scope);
    return typeof v === 'string' ? v : String(v);
  };
  const value = (n: Node, scope: Record<string, string>): unknown => {
    switch (n.k) {
      case 'const':
        return n.v;
      case 'gstring':
        return n.strings.map((s, i) => s + (i < n.values.length ? str(n.values[i], scope) : '')).join('');
      case 'prop':
        if (n.object.k === 'var' && n.object.name === 'env') return scope[n.name] ?? '';
        if (n.object.k === 'var' && n.object.name === 'params') return params[n.name];
        break;
      case 'binary':
        if (n.op === '+') return str(n.left, scope) + str(n.right, scope);
        if (n.op === '==') return value(n.left, scope) === value(n.right, scope);
        break;
      case 'not':
        return !value(n.expr, scope);
      case 'call':
        if (n.name === 'trim' && n.object) return str(n.object, scope).trim();
        break;
    }
    throw new Error(`${current}: unsupported expression ${JSON.stringify(n)}`);
  };

  const sh = async (script: string, scope: Record<string, string>): Promise<string> => {
    const file = join(tmp, `script-${res.steps.length}.sh`);
    await writeFile(file, script, { mode: 0o700 });
    // Jenkins runs a script without a #! line as `sh -xe`.
    const argv = script.startsWith('#!') ? [file] : ['sh', '-xe', file];
    const r = await execa(argv[0], argv.slice(1), { cwd: o.workspace, env: scope, extendEnv: false, reject: false, all: true, stdin: 'ignore' });
    res.steps.push({ stage: current, script, code: r.exitCode ?? -1, output: String(r.all) });
    if (r.exitCode !== 0) throw new StepFailed(`${current}: script returned exit code ${r.exitCode}`);
    return String(r.stdout);
  };

  const credential = (id: string): Credential => {
    const c = o.credentials[id];
    if (!c) throw new Error(`${current}: no credential ${id}`);
    return c;
  };

  const steps = async (body: Node[] | null, scope: Record<string, string>): Promise<void> => {
    for (const n of body ?? []) {
      if (n.k === 'binary' && n.op === '=' && n.left.k === 'prop' && n.left.object.k === 'var' && n.left.object.name === 'env') {
        const v = await evalStep(n.right, scope);
        env[n.left.name] = v;
        scope[n.left.name] = v;
        continue;
      }
      if (n.k !== 'call') throw new Error(`${current}: unsupported statement ${JSON.stringify(n)}`);
      await step(n, scope);
    }
  };

  /** `sh(returnStdout: true, script: …).trim()` and plain values. */
  const evalStep = async (n: Node, scope: Record<string, string>): Promise<string> => {
    if (n.k === 'call' && n.name === 'trim' && n.object) return (await evalStep(n.object, scope)).trim();
    if (n.k === 'call' && n.name === 'sh') {
      if (!n.named.returnStdout || !value(n.named.returnStdout, scope)) throw new Error(`${current}: sh without returnStdout used as a value`);
      return sh(str(n.named.script, scope), scope);
    }
    return str(n, scope);
  };

  const step = async (c: Call, scope: Record<string, string>): Promise<void> => {
    switch (c.name) {
      case 'sh':
        await sh(c.args.length ? str(c.args[0], scope) : str(c.named.script, scope), scope);
        return;
      case 'script':
        await steps(c.closure, scope);
        return;
      case 'echo':
        return;
      case 'junit': {
        // As the JUnit plugin reads them: every workspace file the Ant-style glob matches.
        const glob = str(c.named.testResults, scope);
        for (const path of await matching(o.workspace, glob)) res.junit.push({ path, text: await readFile(join(o.workspace, path), 'utf8') });
        res.recorded.push(`${current}: junit`);
        return;
      }
      case 'archiveArtifacts':
      case 'joySlackNotifications':
        res.recorded.push(`${current}: ${c.name}`);
        return;
      case 'sshagent': {
        const ids = c.named.credentials.k === 'list' ? c.named.credentials.items.map((i) => str(i, scope)) : [];
        const agentDir = await mkdtemp(join(tmp, 'agent-'));
        const agent: TestAgent = await startSshAgent(agentDir);
        try {
          for (const id of ids) {
            const cr = credential(id);
            if (cr.kind !== 'ssh') throw new Error(`${current}: ${id} is not an SSH key credential`);
            await agent.add(cr.keyFile);
          }
          await steps(c.closure, { ...scope, SSH_AUTH_SOCK: agent.socket });
        } finally {
          await agent.stop();
        }
        return;
      }
      case 'withCredentials': {
        const inner = { ...scope };
        const bindings = c.args[0]?.k === 'list' ? c.args[0].items : [];
        for (const b of bindings) {
          if (b.k !== 'call') throw new Error(`${current}: unsupported binding`);
          const cr = credential(str(b.named.credentialsId, scope));
          const variable = str(b.named.variable, scope);
          if (b.name === 'file' && cr.kind === 'file') {
            const f = join(await mkdtemp(join(tmp, 'cred-')), 'secret');
            await writeFile(f, cr.content, { mode: 0o600 });
            inner[variable] = f;
          } else if (b.name === 'string' && cr.kind === 'text') {
            inner[variable] = cr.value;
          } else {
            throw new Error(`${current}: unsupported binding ${b.name}`);
          }
        }
        await steps(c.closure, inner);
        return;
      }
      default:
        throw new Error(`${current}: unsupported step ${c.name}`);
    }
  };

  const environment = (sec: Call | undefined, scope: Record<string, string>): void => {
    for (const n of sec?.closure ?? []) {
      if (n.k !== 'binary' || n.op !== '=' || n.left.k !== 'var') throw new Error(`${current}: unsupported environment entry`);
      const r = n.right;
      if (r.k === 'call' && r.name === 'credentials') {
        const cr = credential(str(r.args[0], scope));
        if (cr.kind !== 'text') throw new Error(`${current}: credentials() of a ${cr.kind} credential`);
        scope[n.left.name] = cr.value;
      } else {
        scope[n.left.name] = str(r, scope);
      }
    }
    Object.assign(scope, o.overrides ?? {});
  };

  const when = (c: Call, scope: Record<string, string>): boolean => {
    const branch = scope.BRANCH_NAME;
    switch (c.name) {
      case 'when':
      case 'allOf':
        return calls(c.closure).every((x) => when(x, scope));
      case 'anyOf':
        return calls(c.closure).some((x) => when(x, scope));
      case 'not':
        return !calls(c.closure).every((x) => when(x, scope));
      case 'branch': {
        if (!branch) return false;
        const pattern = str(c.args[0] ?? c.named.pattern, scope);
        const cmp = c.named.comparator ? str(c.named.comparator, scope) : 'GLOB';
        if (cmp === 'REGEXP') return new RegExp(`^(?:${pattern})$`).test(branch);
        if (cmp === 'EQUALS') return pattern === branch;
        return globRe(pattern).test(branch);
      }
      case 'triggeredBy':
        return o.causes.includes(str(c.args[0], scope));
      case 'environment':
        return scope[str(c.named.name, scope)] === str(c.named.value, scope);
      case 'expression': {
        const body = c.closure ?? [];
        if (body.length !== 1) throw new Error(`${current}: expression with ${body.length} statements`);
        return !!value(body[0], scope);
      }
      default:
        throw new Error(`${current}: unsupported when condition ${c.name}`);
    }
  };

  try {
    for (const p of calls(section(pipeline, 'parameters')?.closure ?? [])) {
      const name = str(p.named.name, env);
      if (p.name === 'choice') params[name] = p.named.choices.k === 'list' ? str(p.named.choices.items[0], env) : '';
      else params[name] = value(p.named.defaultValue, env) as string | boolean;
    }
    Object.assign(params, o.params ?? {});
    for (const [k, v] of Object.entries(params)) env[k] = String(v);
    environment(section(pipeline, 'environment'), env);

    let failed = false;
    for (const stage of calls(section(pipeline, 'stages')?.closure ?? [])) {
      current = str(stage.args[0], env);
      if (o.only && !o.only.includes(current)) continue;
      if (failed) {
        res.stages[current] = 'not run';
        continue;
      }
      const cond = section(stage, 'when');
      if (cond && !when(cond, env)) {
        res.stages[current] = 'skipped';
        continue;
      }
      const scope = { ...env };
      environment(section(stage, 'environment'), scope);
      try {
        await steps(section(stage, 'steps')?.closure ?? null, scope);
        // `env.X = …` inside the stage is global; the stage's own environment is not.
        res.stages[current] = 'ran';
      } catch (err) {
        if (!(err instanceof StepFailed)) throw err;
        res.stages[current] = 'failed';
        failed = true;
      }
    }
    res.result = failed ? 'FAILURE' : 'SUCCESS';

    const post = o.only ? undefined : section(pipeline, 'post');
    for (const cond of calls(post?.closure ?? [])) {
      current = `post ${cond.name}`;
      const runIt = cond.name === 'always' || cond.name === 'cleanup' || (cond.name === 'success' ? !failed : cond.name === 'failure' ? failed : false);
      if (!['always', 'cleanup', 'success', 'failure'].includes(cond.name)) throw new Error(`unsupported post condition ${cond.name}`);
      if (!runIt) continue;
      try {
        await steps(cond.closure, { ...env });
      } catch (err) {
        if (!(err instanceof StepFailed)) throw err;
        res.result = 'FAILURE';
      }
    }
    return res;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The `sh` scripts of a pipeline tree in order (stages, then post), for reading. */
export function shScripts(pipeline: Call): string[] {
  const out: string[] = [];
  const walk = (nodes: Node[] | null): void => {
    for (const n of nodes ?? []) {
      if (n.k === 'call') {
        if (n.name === 'sh') {
          const s = n.args[0] ?? n.named.script;
          if (s?.k === 'const') out.push(String(s.v));
        }
        for (const a of [...n.args, ...Object.values(n.named)]) walk([a]);
        walk(n.closure);
        if (n.object) walk([n.object]);
      } else if (n.k === 'binary') {
        walk([n.left, n.right]);
      }
    }
  };
  walk(pipeline.closure);
  return out;
}
