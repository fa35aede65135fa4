/**
 * Runs a declarative Jenkinsfile the way a Jenkins agent would, for the
 * subset our examples use: the tree comes from Groovy (JenkinsfileTree.groovy,
 * the parser Jenkins uses), the `sh` steps run in order as Jenkins runs them
 * (`sh -xe` in WORKSPACE, the job's environment), `when` decides which
 * stages run, `post` runs after a failure too. Credentials are real: the
 * `sshagent` key goes into a real ssh-agent, `withCredentials` files are
 * written out. Anything outside the subset throws, so a template cannot grow
 * a step this runner would silently skip. The fan-out of Jenkinsfile.multi
 * is in the subset too: `script` blocks' variables (`def`, the binding),
 * `for` loops, maps of closures run by `parallel` (every branch to its end,
 * concurrently), `node { }` as another agent with a workspace of its own,
 * `checkout scm`, `withEnv`, `stash`/`unstash` (files copied between the
 * workspaces) and `readJSON`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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
  | { k: 'binary'; op: string; left: Node; right: Node; declares?: boolean }
  | { k: 'for'; var: string; collection: Node; body: Node[] }
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
  /** `checkout scm` in a `node { }` block's empty workspace: what the job's SCM would put there. */
  checkout?: (workspace: string) => Promise<void>;
}

export interface StepLog {
  stage: string;
  script: string;
  code: number;
  output: string;
  /** The agent's workspace it ran in. */
  workspace: string;
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
  /** Each `node { }` block's agent: its label and workspace. */
  nodes: Array<{ label: string; workspace: string }>;
  /** What each `stash` saved: workspace-relative paths. */
  stashes: Record<string, string[]>;
}

class StepFailed extends Error {}

/** Workspace files an Ant-style glob (`**`, `*`, `,`-separated) matches, as relative paths. */
async function matching(workspace: string, globs: string): Promise<string[]> {
  // `**/` any directories, a trailing `/**` everything below, `*` within one name.
  const part = (p: string) => p.split('*').map((t) => t.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*');
  const res = globs.split(',').map((g) => {
    const t = g.trim();
    const below = t.endsWith('/**');
    return new RegExp('^' + (below ? t.slice(0, -3) : t).split('**/').map(part).join('(?:.*/)?') + (below ? '/.*' : '') + '$');
  });
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

/** A Groovy closure as a value: its body and the variables it closed over. */
interface ClosureValue {
  closure: Node[];
  vars: Vars;
}

/** Groovy's local variables (`def x`), one frame per block, looked up outwards; the script binding last. */
interface Vars {
  map: Map<string, unknown>;
  parent?: Vars;
}

/** Where a step runs: the job's environment as the step sees it, Groovy's variables, the agent's workspace. */
interface Ctx {
  env: Record<string, string>;
  vars: Vars;
  ws: string;
}

export async function runJenkinsfile(pipeline: Call, o: JobOptions): Promise<JobResult> {
  const env: Record<string, string> = { ...o.agentEnv, ...o.jenkinsEnv, WORKSPACE: o.workspace };
  const params: Record<string, string | boolean> = {};
  const res: JobResult = { result: 'SUCCESS', stages: {}, steps: [], recorded: [], junit: [], env, nodes: [], stashes: {} };
  const tmp = await mkdtemp(join(tmpdir(), 'bi-jenkins-job-'));
  /** Variables assigned without `def` (the script binding), shared by every script block. */
  const binding: Vars = { map: new Map() };
  const stashes = new Map<string, string>();
  let current = '(pipeline)';
  let scripts = 0;

  const lookup = (vars: Vars | undefined, name: string): Vars | undefined => {
    for (let v = vars; v; v = v.parent) if (v.map.has(name)) return v;
    return binding.map.has(name) ? binding : undefined;
  };

  const str = (n: Node, c: Ctx): string => {
    const v = value(n, c);
    return typeof v === 'string' ? v : String(v);
  };
  const value = (n: Node, c: Ctx): unknown => {
    switch (n.k) {
      case 'const':
        return n.v;
      case 'gstring':
        return n.strings.map((s, i) => s + (i < n.values.length ? str(n.values[i], c) : '')).join('');
      case 'var': {
        const at = lookup(c.vars, n.name);
        if (at) return at.map.get(n.name);
        break;
      }
      case 'prop': {
        if (n.object.k === 'var' && n.object.name === 'env') return c.env[n.name] ?? '';
        if (n.object.k === 'var' && n.object.name === 'params') return params[n.name];
        // A property of a value (readJSON's objects): only own data properties.
        const obj = value(n.object, c);
        if (obj && typeof obj === 'object' && Object.hasOwn(obj, n.name)) return (obj as Record<string, unknown>)[n.name];
        throw new Error(`${current}: no property ${n.name} on ${JSON.stringify(obj)?.slice(0, 80)}`);
      }
      case 'binary':
        if (n.op === '+') return str(n.left, c) + str(n.right, c);
        if (n.op === '==') return value(n.left, c) === value(n.right, c);
        break;
      case 'not':
        return !value(n.expr, c);
      case 'list':
        return n.items.map((i) => value(i, c));
      case 'map':
        return Object.fromEntries(Object.entries(n.entries).map(([k, v]) => [k, value(v, c)]));
      case 'closure':
        return { closure: n.body, vars: c.vars } satisfies ClosureValue;
      case 'call':
        if (n.name === 'trim' && n.object) return str(n.object, c).trim();
        break;
    }
    throw new Error(`${current}: unsupported expression ${JSON.stringify(n)}`);
  };

  const sh = async (script: string, c: Ctx): Promise<string> => {
    const file = join(tmp, `script-${scripts++}.sh`);
    await writeFile(file, script, { mode: 0o700 });
    // Jenkins runs a script without a #! line as `sh -xe`.
    const argv = script.startsWith('#!') ? [file] : ['sh', '-xe', file];
    const stage = current;
    const r = await execa(argv[0], argv.slice(1), { cwd: c.ws, env: c.env, extendEnv: false, reject: false, all: true, stdin: 'ignore' });
    res.steps.push({ stage, script, code: r.exitCode ?? -1, output: String(r.all), workspace: c.ws });
    if (r.exitCode !== 0) throw new StepFailed(`${stage}: script returned exit code ${r.exitCode}`);
    return String(r.stdout);
  };

  const credential = (id: string): Credential => {
    const cr = o.credentials[id];
    if (!cr) throw new Error(`${current}: no credential ${id}`);
    return cr;
  };

  const steps = async (body: Node[] | null, c: Ctx): Promise<void> => {
    // A block is a frame of its own: `def` inside it is not seen outside.
    const inner: Ctx = { ...c, vars: { map: new Map(), parent: c.vars } };
    for (const n of body ?? []) {
      if (n.k === 'binary' && n.op === '=') {
        await assign(n, inner);
        continue;
      }
      if (n.k === 'for') {
        const list = value(n.collection, inner);
        if (!Array.isArray(list)) throw new Error(`${current}: for over ${JSON.stringify(list)?.slice(0, 80)}, not a list`);
        // Each pass its own frame: a closure made in it keeps that pass's values.
        for (const item of list) await steps(n.body, { ...inner, vars: { map: new Map([[n.var, item]]), parent: inner.vars } });
        continue;
      }
      if (n.k !== 'call') throw new Error(`${current}: unsupported statement ${JSON.stringify(n)}`);
      await step(n, inner);
    }
  };

  /** `env.X = …`, `def x = …`, `x = …` (the binding, unless a frame has it), `map[key] = …`. */
  const assign = async (n: Extract<Node, { k: 'binary' }>, c: Ctx): Promise<void> => {
    const l = n.left;
    if (l.k === 'prop' && l.object.k === 'var' && l.object.name === 'env') {
      const v = await evalStep(n.right, c);
      env[l.name] = v;
      c.env[l.name] = v;
      return;
    }
    const v = await evalValue(n.right, c);
    if (l.k === 'var') {
      (n.declares ? c.vars : (lookup(c.vars, l.name) ?? binding)).map.set(l.name, v);
      return;
    }
    if (l.k === 'binary' && l.op === '[') {
      const target = value(l.left, c);
      if (!target || typeof target !== 'object' || Array.isArray(target)) throw new Error(`${current}: [] on a non-map`);
      (target as Record<string, unknown>)[str(l.right, c)] = v;
      return;
    }
    throw new Error(`${current}: unsupported assignment ${JSON.stringify(n)}`);
  };

  /** `sh(returnStdout: true, script: …).trim()` and plain values. */
  const evalStep = async (n: Node, c: Ctx): Promise<string> => {
    if (n.k === 'call' && n.name === 'trim' && n.object) return (await evalStep(n.object, c)).trim();
    if (n.k === 'call' && n.name === 'sh') {
      if (!n.named.returnStdout || !value(n.named.returnStdout, c)) throw new Error(`${current}: sh without returnStdout used as a value`);
      return sh(str(n.named.script, c), c);
    }
    return str(n, c);
  };

  /** A value a step returns (readJSON), else an expression's. */
  const evalValue = async (n: Node, c: Ctx): Promise<unknown> => {
    if (n.k === 'call' && n.name === 'readJSON' && !n.object) {
      if (!n.named.file) throw new Error(`${current}: readJSON without file:`);
      return JSON.parse(await readFile(join(c.ws, str(n.named.file, c)), 'utf8')) as unknown;
    }
    if (n.k === 'call' && (n.name === 'sh' || n.name === 'trim')) return evalStep(n, c);
    return value(n, c);
  };

  const isClosure = (v: unknown): v is ClosureValue => !!v && typeof v === 'object' && Array.isArray((v as ClosureValue).closure);

  const step = async (call: Call, c: Ctx): Promise<void> => {
    switch (call.name) {
      case 'sh':
        await sh(call.args.length ? str(call.args[0], c) : str(call.named.script, c), c);
        return;
      case 'script':
        await steps(call.closure, c);
        return;
      case 'echo':
        return;
      case 'junit': {
        // As the JUnit plugin reads them: every workspace file the Ant-style glob matches.
        const glob = str(call.named.testResults, c);
        for (const path of await matching(c.ws, glob)) res.junit.push({ path, text: await readFile(join(c.ws, path), 'utf8') });
        res.recorded.push(`${current}: junit`);
        return;
      }
      case 'archiveArtifacts':
      case 'joySlackNotifications':
        res.recorded.push(`${current}: ${call.name}`);
        return;
      case 'parallel': {
        // Jenkins' parallel: every branch runs to its end; the step fails after, if any branch failed.
        const branches = value(call.args[0], c);
        if (!branches || typeof branches !== 'object' || !Object.values(branches).every(isClosure)) throw new Error(`${current}: parallel takes a map of closures`);
        const runs = await Promise.allSettled(Object.values(branches as Record<string, ClosureValue>).map((b) => steps(b.closure, { ...c, env: { ...c.env }, vars: b.vars })));
        const failed = runs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
        return;
      }
      case 'node': {
        // Another agent: a workspace of its own (empty until `checkout scm`), WORKSPACE and NODE_NAME its own.
        // Taken before any wait: parallel branches each get an agent of their own.
        const n = res.nodes.length + 1;
        const ws = `${o.workspace}-agent-${n}`;
        const label = call.args[0]?.k === 'call' ? `${call.args[0].name}(…)` : call.args[0] ? str(call.args[0], c) : '';
        res.nodes.push({ label, workspace: ws });
        await rm(ws, { recursive: true, force: true });
        await mkdir(ws, { recursive: true });
        await steps(call.closure, { ...c, env: { ...c.env, WORKSPACE: ws, NODE_NAME: `jenkins-agent-${n + 1}` }, ws });
        return;
      }
      case 'checkout': {
        if (!(call.args[0]?.k === 'var' && call.args[0].name === 'scm')) throw new Error(`${current}: only checkout scm`);
        if (!o.checkout) throw new Error(`${current}: checkout scm without JobOptions.checkout`);
        await o.checkout(c.ws);
        return;
      }
      case 'withEnv': {
        const list = value(call.args[0], c);
        if (!Array.isArray(list)) throw new Error(`${current}: withEnv takes a list`);
        const inner = { ...c.env };
        for (const e of list as string[]) {
          const i = e.indexOf('=');
          if (i <= 0) throw new Error(`${current}: withEnv entry ${e} is not NAME=VALUE`);
          inner[e.slice(0, i)] = e.slice(i + 1);
        }
        await steps(call.closure, { ...c, env: inner });
        return;
      }
      case 'stash': {
        // The workspace files the Ant-style glob matches, kept for unstash on any agent.
        const name = str(call.named.name ?? call.args[0], c);
        const files = await matching(c.ws, str(call.named.includes, c));
        if (!files.length) throw new StepFailed(`${current}: stash ${name}: no files match`);
        const into = join(tmp, 'stash', String(stashes.size));
        for (const f of files) {
          await mkdir(dirname(join(into, f)), { recursive: true });
          await copyFile(join(c.ws, f), join(into, f));
        }
        stashes.set(name, into);
        res.stashes[name] = files;
        return;
      }
      case 'unstash': {
        const name = str(call.named.name ?? call.args[0], c);
        const from = stashes.get(name);
        if (!from) throw new StepFailed(`${current}: no such saved stash '${name}'`);
        for (const f of res.stashes[name]) {
          await mkdir(dirname(join(c.ws, f)), { recursive: true });
          await copyFile(join(from, f), join(c.ws, f));
        }
        return;
      }
      case 'sshagent': {
        const ids = call.named.credentials.k === 'list' ? call.named.credentials.items.map((i) => str(i, c)) : [];
        const agentDir = await mkdtemp(join(tmp, 'agent-'));
        const agent: TestAgent = await startSshAgent(agentDir);
        try {
          for (const id of ids) {
            const cr = credential(id);
            if (cr.kind !== 'ssh') throw new Error(`${current}: ${id} is not an SSH key credential`);
            await agent.add(cr.keyFile);
          }
          await steps(call.closure, { ...c, env: { ...c.env, SSH_AUTH_SOCK: agent.socket } });
        } finally {
          await agent.stop();
        }
        return;
      }
      case 'withCredentials': {
        const inner = { ...c.env };
        const bindings = call.args[0]?.k === 'list' ? call.args[0].items : [];
        for (const b of bindings) {
          if (b.k !== 'call') throw new Error(`${current}: unsupported binding`);
          const cr = credential(str(b.named.credentialsId, c));
          const variable = str(b.named.variable, c);
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
        await steps(call.closure, { ...c, env: inner });
        return;
      }
      default:
        throw new Error(`${current}: unsupported step ${call.name}`);
    }
  };

  const environment = (sec: Call | undefined, scope: Record<string, string>): void => {
    const c: Ctx = { env: scope, vars: binding, ws: o.workspace };
    for (const n of sec?.closure ?? []) {
      if (n.k !== 'binary' || n.op !== '=' || n.left.k !== 'var') throw new Error(`${current}: unsupported environment entry`);
      const r = n.right;
      if (r.k === 'call' && r.name === 'credentials') {
        const cr = credential(str(r.args[0], c));
        if (cr.kind !== 'text') throw new Error(`${current}: credentials() of a ${cr.kind} credential`);
        scope[n.left.name] = cr.value;
      } else {
        scope[n.left.name] = str(r, c);
      }
    }
    Object.assign(scope, o.overrides ?? {});
  };

  const when = (call: Call, scope: Record<string, string>): boolean => {
    const c: Ctx = { env: scope, vars: binding, ws: o.workspace };
    const branch = scope.BRANCH_NAME;
    switch (call.name) {
      case 'when':
      case 'allOf':
        return calls(call.closure).every((x) => when(x, scope));
      case 'anyOf':
        return calls(call.closure).some((x) => when(x, scope));
      case 'not':
        return !calls(call.closure).every((x) => when(x, scope));
      case 'branch': {
        if (!branch) return false;
        const pattern = str(call.args[0] ?? call.named.pattern, c);
        const cmp = call.named.comparator ? str(call.named.comparator, c) : 'GLOB';
        if (cmp === 'REGEXP') return new RegExp(`^(?:${pattern})$`).test(branch);
        if (cmp === 'EQUALS') return pattern === branch;
        return globRe(pattern).test(branch);
      }
      case 'triggeredBy':
        return o.causes.includes(str(call.args[0], c));
      case 'environment':
        return scope[str(call.named.name, c)] === str(call.named.value, c);
      case 'expression': {
        const body = call.closure ?? [];
        if (body.length !== 1) throw new Error(`${current}: expression with ${body.length} statements`);
        return !!value(body[0], c);
      }
      default:
        throw new Error(`${current}: unsupported when condition ${call.name}`);
    }
  };

  try {
    const top: Ctx = { env, vars: binding, ws: o.workspace };
    for (const p of calls(section(pipeline, 'parameters')?.closure ?? [])) {
      const name = str(p.named.name, top);
      if (p.name === 'choice') params[name] = p.named.choices.k === 'list' ? str(p.named.choices.items[0], top) : '';
      else params[name] = value(p.named.defaultValue, top) as string | boolean;
    }
    Object.assign(params, o.params ?? {});
    for (const [k, v] of Object.entries(params)) env[k] = String(v);
    environment(section(pipeline, 'environment'), env);

    let failed = false;
    for (const stage of calls(section(pipeline, 'stages')?.closure ?? [])) {
      current = str(stage.args[0], top);
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
        await steps(section(stage, 'steps')?.closure ?? null, { env: scope, vars: binding, ws: o.workspace });
        // `env.X = …` inside the stage is global; the stage's own environment is not.
        res.stages[current] = 'ran';
      } catch (err) {
        if (!(err instanceof StepFailed)) throw err;
        // A step other than sh that failed (stash, unstash) is in the log too.
        if (!res.steps.some((st) => st.stage === current && st.code !== 0)) res.steps.push({ stage: current, script: '', code: -1, output: err.message, workspace: o.workspace });
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
        await steps(cond.closure, { env: { ...env }, vars: binding, ws: o.workspace });
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
      } else if (n.k === 'for') {
        walk(n.body);
      } else if (n.k === 'closure') {
        walk(n.body);
      }
    }
  };
  walk(pipeline.closure);
  return out;
}
