/**
 * The idempotent import as a pure function of what the server has
 * (imgapi.md §2.7, §2.10): given GetImage's answer (any channel, any
 * state), the one next call that moves it towards "active in our channel
 * with our file", or done, or a conflict that must stop the publish.
 * updates-imgadm had no resume at all (an unactivated leftover was a
 * permanent 409); here every rerun continues from wherever the last stopped.
 */
import type { ImageManifest } from '../image/manifest/types.js';

export interface Want {
  uuid: string;
  name: string;
  version: string;
  sha1: string;
  size: number;
  channel: string;
}

export type StepName = 'import' | 'channel-add' | 'add-file' | 'activate';

export type Decision =
  | { kind: 'done'; state: string }
  | { kind: 'step'; step: StepName; /** channel-add: a channel the image is already in. */ from?: string }
  | { kind: 'conflict'; reason: string };

export function decide(image: ImageManifest | undefined, w: Want): Decision {
  // A `creating` placeholder is overwritten by AdminImportImage (checkIfAlreadyExists).
  if (!image || image.state === 'creating') return { kind: 'step', step: 'import' };
  const state = image.state ?? 'active';
  if (image.name !== w.name || image.version !== w.version) {
    return { kind: 'conflict', reason: `image ${w.uuid} on the server is ${image.name} ${image.version} (${state}), not ${w.name} ${w.version}: the uuid is taken` };
  }
  // IMGAPI stores a file only whole and checked against the sha1 we send, so a different one is not ours.
  const f = image.files?.[0];
  if (f && (f.sha1 !== w.sha1 || f.size !== w.size)) {
    return {
      kind: 'conflict',
      reason: `image ${w.uuid} is on the server (${state}) with a different file: sha1 ${f.sha1}, ${f.size} bytes; ours is sha1 ${w.sha1}, ${w.size} bytes`,
    };
  }
  if (state === 'failed') return { kind: 'conflict', reason: `image ${w.uuid} is on the server in state "failed"` };
  // No `channels` (a server without channels): nothing to add.
  if (image.channels && image.channels.length && !image.channels.includes(w.channel)) {
    return { kind: 'step', step: 'channel-add', from: image.channels[0] };
  }
  if (state === 'unactivated') return { kind: 'step', step: f ? 'activate' : 'add-file' };
  if (!f) return { kind: 'conflict', reason: `image ${w.uuid} is ${state} on the server but has no file` };
  return { kind: 'done', state };
}

/** What the server would answer after `step` succeeds (for planning without writing). */
export function simulate(image: ImageManifest | undefined, d: Extract<Decision, { kind: 'step' }>, w: Want): ImageManifest {
  switch (d.step) {
    case 'import':
      return { v: 2, uuid: w.uuid, name: w.name, version: w.version, state: 'unactivated', files: [], channels: [w.channel] };
    case 'channel-add':
      return { ...image!, channels: [...(image!.channels ?? []), w.channel] };
    case 'add-file':
      return { ...image!, files: [{ sha1: w.sha1, size: w.size, compression: 'gzip' }] };
    case 'activate':
      return { ...image!, state: image!.disabled ? 'disabled' : 'active' };
  }
}

/** Every step from this state to done (at most four), or the conflict that stops it. */
export function planSteps(image: ImageManifest | undefined, w: Want): { steps: Array<Extract<Decision, { kind: 'step' }>>; end: Decision } {
  const steps: Array<Extract<Decision, { kind: 'step' }>> = [];
  let cur = image;
  for (let i = 0; i < 8; i++) {
    const d = decide(cur, w);
    if (d.kind !== 'step') return { steps, end: d };
    steps.push(d);
    cur = simulate(cur, d, w);
  }
  throw new Error('import plan does not converge');
}

/** Fields AdminImportImage accepts (§1.5, Image.create); zvol-only ones only for zvol images. */
const ACCEPTED = new Set([
  'v', 'uuid', 'owner', 'name', 'version', 'description', 'homepage', 'eula', 'disabled', 'public', 'acl',
  'requirements', 'users', 'billing_tags', 'traits', 'tags', 'generate_passwords', 'inherited_directories',
  'origin', 'error', 'published_at', 'urn', 'type', 'os',
]);
const ZVOL_ONLY = new Set(['nic_driver', 'disk_driver', 'cpu_type', 'image_size']);
/** Server-managed: dropped or replaced by the server, or (activated, icon) refused. */
const SERVER_MANAGED = new Set(['files', 'state', 'channels', 'activated', 'icon']);

/**
 * The AdminImportImage body for a built manifest: server-managed and
 * unknown keys stripped (the server 422s on extras), `v` defaulted (import
 * does not default it), `public:false` (updates is a private-mode IMGAPI).
 * `dropped` lists the unknown keys, worth a warning.
 */
export function importBody(m: ImageManifest): { body: Record<string, unknown> & { uuid: string }; dropped: string[] } {
  const zvol = m.type === 'zvol';
  const body: Record<string, unknown> = {};
  const dropped: string[] = [];
  for (const [k, v] of Object.entries(m)) {
    if (v === undefined) continue;
    if (ACCEPTED.has(k) || (zvol && ZVOL_ONLY.has(k))) body[k] = v;
    else if (!SERVER_MANAGED.has(k) && !ZVOL_ONLY.has(k)) dropped.push(k);
  }
  body.v ??= 2;
  body.public = false;
  if (body.published_at !== undefined && typeof body.published_at !== 'string') {
    delete body.published_at;
    dropped.push('published_at');
  }
  return { body: body as Record<string, unknown> & { uuid: string }, dropped };
}
