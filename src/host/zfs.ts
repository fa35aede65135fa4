/**
 * ZFS through the `zfs` command: the kernel's on SmartOS, OpenZFS or
 * zfs-fuse on Linux. Datasets this tool creates carry a user property;
 * `destroy` refuses any dataset without it, so buildimage never destroys
 * what it did not create.
 */
import { BuildError } from '../core/errors.js';
import { log } from '../core/log.js';
import { run, spawn, type RunOptions } from './exec.js';
import { platform } from './platform.js';
import { retryLine, withRetry } from '../core/retry.js';

/** User property marking datasets buildimage created; its value says what for. */
export const OWNER_PROPERTY = 'com.tritondatacenter.buildimage:created';
/** On zone analogs: the id of the build that owns it. */
export const BUILD_PROPERTY = 'com.tritondatacenter.buildimage:build';
/**
 * On installed images buildimage created: when a build last used it (as its
 * base, or in its base's origin chain) and which build, written by prepare
 * (base/cache `formatUse`: `<ISO time> <build id> <name>@<version>`). What
 * `prune` reads to tell a cached image from an unused one.
 */
export const LAST_USED_PROPERTY = 'com.tritondatacenter.buildimage:last-used';
/** Values of OWNER_PROPERTY. */
export type OwnerRole = 'image' | 'analog' | 'origin-view';

/** zfs-fuse (and sometimes the kernel) says "busy" for a moment after a dataset was used. */
const BUSY = /dataset is busy|pool or dataset is busy|device busy|resource busy|umount failed/i;

export function isBusyError(err: unknown): boolean {
  return err instanceof Error && BUSY.test(err.message);
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.:/-]*$/;

export function assertDatasetName(name: string, what = 'dataset'): void {
  if (!NAME_RE.test(name) || name.includes('//') || name.endsWith('/') || name.length > 255) {
    throw new BuildError(`invalid ${what} name: ${JSON.stringify(name)}`);
  }
}

export class Zfs {
  constructor(
    private readonly cmd = platform().commands.zfs,
    private readonly busyRetries = 8,
  ) {}

  private run(args: string[], opts: RunOptions = {}) {
    return run(this.cmd, args, opts);
  }

  /** Runs a command that may hit a transient "busy"; bounded retries. */
  private runBusy(args: string[], opts: RunOptions = {}) {
    return withRetry(() => this.run(args, opts), {
      attempts: this.busyRetries,
      firstDelayMs: 250,
      maxDelayMs: 4000,
      retryable: isBusyError,
      // Routine with zfs-fuse: not worth a warning.
      onRetry: (err, n, wait) => log.debug(retryLine(err, n, this.busyRetries, wait)),
    });
  }

  async exists(name: string): Promise<boolean> {
    const r = await run(this.cmd, ['list', '-H', '-o', 'name', name], { okExitCodes: [0, 1] });
    return r.exitCode === 0 && r.stdout.trim() === name;
  }

  /** Property values (-p: parsable numbers); '-' for unset user properties. */
  async get(name: string, props: string[]): Promise<Record<string, string>> {
    const r = await this.run(['get', '-H', '-p', '-o', 'property,value', props.join(','), name]);
    const out: Record<string, string> = {};
    for (const line of r.stdout.split('\n')) {
      if (!line) continue;
      const [prop, ...rest] = line.split('\t');
      // The first line of each: a user property's value may go on over lines that read like others.
      if (!Object.hasOwn(out, prop)) out[prop] = rest.join('\t');
    }
    return out;
  }

  async getOne(name: string, prop: string): Promise<string> {
    return (await this.get(name, [prop]))[prop] ?? '-';
  }

  async set(name: string, props: Record<string, string>): Promise<void> {
    for (const [k, v] of Object.entries(props)) await this.run(['set', `${k}=${v}`, name]);
  }

  /** Direct children (filesystems) and snapshots of `name`, names only. */
  async listChildren(name: string, type: 'filesystem' | 'snapshot' = 'filesystem'): Promise<string[]> {
    const r = await this.run(['list', '-H', '-o', 'name', '-t', type, '-r', '-d', '1', name]);
    return r.stdout.split('\n').filter((n) => n && n !== name);
  }

  async snapshots(name: string): Promise<string[]> {
    return this.listChildren(name, 'snapshot');
  }

  async snapshot(snap: string): Promise<void> {
    await this.run(['snapshot', snap]);
  }

  /** `zfs rollback -r`: back to `snap`, destroying the dataset's later snapshots. */
  async rollback(snap: string): Promise<void> {
    await this.runBusy(['rollback', '-r', snap], { uninterruptible: true });
  }

  async renameSnapshot(from: string, to: string): Promise<void> {
    await this.runBusy(['rename', from, to]);
  }

  async rename(from: string, to: string): Promise<void> {
    await this.runBusy(['rename', from, to]);
  }

  async clone(snapshot: string, name: string, props: Record<string, string>): Promise<void> {
    const opts = Object.entries(props).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
    await this.run(['clone', ...opts, snapshot, name]);
  }

  async create(name: string, props: Record<string, string> = {}): Promise<void> {
    const opts = Object.entries(props).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
    await this.run(['create', ...opts, name]);
  }

  async mount(name: string): Promise<void> {
    await this.runBusy(['mount', name]);
  }

  async unmount(name: string): Promise<void> {
    await this.runBusy(['unmount', name], { uninterruptible: true });
  }

  async isMounted(name: string): Promise<boolean> {
    return (await this.getOne(name, 'mounted')) === 'yes';
  }

  /**
   * Our role for `name` (for a snapshot: its dataset's) when OWNER_PROPERTY is
   * set on it itself: not inherited from a parent (set on a pool it would
   * mark every dataset below), nor received with a stream someone else sent.
   * What decides whether the tool may destroy something.
   */
  async owner(name: string): Promise<string | undefined> {
    const dataset = name.split('@')[0];
    return (await this.owners(dataset, false)).find((o) => o.name === dataset)?.owner;
  }

  /**
   * Our role as set on `dataset` itself (see owner), and with `recursive` on
   * every filesystem and volume below it too: one `zfs get` for all.
   */
  private async owners(dataset: string, recursive: boolean): Promise<Array<{ name: string; owner: string | undefined }>> {
    const r = await this.run(['get', '-H', '-p', ...(recursive ? ['-r'] : []), '-o', 'name,value,source', OWNER_PROPERTY, dataset]);
    return (
      r.stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split('\t'))
        // zfs-fuse's `get` has no -t: snapshots are told by their '@'.
        .filter(([n]) => !n.includes('@'))
        .map(([n, value, source]) => ({ name: n, owner: source === 'local' && value && value !== '-' ? value : undefined }))
    );
  }

  /** Every filesystem and volume of `pool` with its origin snapshot (`-` when it is no clone): who is cloned from what. */
  async origins(pool: string): Promise<Array<{ name: string; origin: string | undefined }>> {
    const r = await this.run(['list', '-H', '-o', 'name,origin', '-t', 'filesystem,volume', '-r', pool]);
    return r.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [name, origin] = line.split('\t');
        return { name, origin: origin && origin !== '-' ? origin : undefined };
      });
  }

  async markOwned(name: string, role: OwnerRole): Promise<void> {
    await this.set(name, { [OWNER_PROPERTY]: role });
  }

  /**
   * Destroys a dataset (recursively: its snapshots and children) only if it
   * and every filesystem or volume below it carry our ownership property.
   * Returns false when it does not exist.
   */
  async destroyOwned(name: string): Promise<boolean> {
    if (!(await this.exists(name))) return false;
    const dataset = name.split('@')[0];
    const owners = await this.owners(dataset, !name.includes('@'));
    if (!owners.find((o) => o.name === dataset)?.owner) {
      throw new BuildError(`refusing to destroy ${name}: it was not created by buildimage (no ${OWNER_PROPERTY} property set on it)`);
    }
    const stranger = owners.find((o) => !o.owner)?.name;
    if (stranger) {
      throw new BuildError(`refusing to destroy ${name}: ${stranger} below it was not created by buildimage (no ${OWNER_PROPERTY} property set on it)`, {
        hint: `move it out (\`zfs rename\`) or destroy it yourself, then run again`,
      });
    }
    await this.runBusy(['destroy', '-r', name], { uninterruptible: true });
    return true;
  }

  /** `zfs send [-i from] snap`; the caller reads stdout. */
  send(snapshot: string, incrementalFrom?: string) {
    const args = incrementalFrom ? ['send', '-i', incrementalFrom, snapshot] : ['send', snapshot];
    return spawn(this.cmd, args, { stdin: 'ignore' });
  }

  /** `zfs receive -u name`; the caller writes the stream to stdin. Unmounted so the rename after is safe. */
  receive(name: string) {
    return spawn(this.cmd, ['receive', '-u', name], { stdout: 'ignore' });
  }
}
