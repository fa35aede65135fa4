/**
 * The build's provenance at seal: the facts a build recorded (the base
 * chain, the proto and its digest, packages, the checkout, the definition
 * as recorded) made into an in-toto statement (provenance/statement), in a
 * DSSE envelope signed with publish's SSH key when this machine has it. A
 * build without a key still succeeds: its envelope has no signature yet,
 * and `publish --state` signs it before uploading.
 */
import { lstat } from 'node:fs/promises';
import { basename } from 'node:path';
import { oneLine } from '../core/errors.js';
import { digestFile } from '../core/files.js';
import type { Layout } from '../core/layout.js';
import { log } from '../core/log.js';
import { toolVersion } from '../core/package.js';
import { recordedUrl } from '../core/redact.js';
import type { GitInfo } from '../host/git.js';
import { defaultImgadmDir, knownManifest } from '../base/known.js';
import type { ImageManifest } from '../image/manifest/types.js';
import { envelopeFor, writeEnvelope } from '../provenance/envelope-file.js';
import { protoTreeDigest } from '../provenance/proto-digest.js';
import { makeStatement, type ProvenanceInput, type Resource } from '../provenance/statement.js';
import { recordedDefinition } from '../settings/definition.js';
import type { BuildState } from './state.js';

/** Origins followed from the base image, at most. */
const MAX_CHAIN = 32;

/** The base image and its origins, each with its file's sha1 as its manifest says, as far as manifests are known here. */
async function baseChain(state: BuildState, layout: Layout): Promise<ProvenanceInput['baseChain']> {
  const out: ProvenanceInput['baseChain'] = [];
  let m: ImageManifest | undefined = state.base!.manifest as unknown as ImageManifest;
  let uuid = state.base!.uuid;
  const seen = new Set<string>();
  while (uuid && out.length < MAX_CHAIN && !seen.has(uuid)) {
    seen.add(uuid);
    out.push({ uuid, ...(m ? { name: m.name, version: m.version, ...(m.files?.[0]?.sha1 ? { sha1: m.files[0].sha1 } : {}) } : {}) });
    const next: string | undefined = m?.origin;
    if (!next) break;
    m = (await knownManifest(layout, next, { imgadmDir: defaultImgadmDir() }).catch(() => undefined))?.manifest;
    uuid = next;
  }
  return out;
}

/** pkg_info's `name-version` split at its last dash (pkgsrc versions have none). */
export function splitPackage(full: string): { name: string; version?: string } {
  const i = full.lastIndexOf('-');
  return i > 0 && /^\d/.test(full.slice(i + 1)) ? { name: full.slice(0, i), version: full.slice(i + 1) } : { name: full };
}

/**
 * The proto as resources: the contents listing's content digest (what the
 * image adds, changes and deletes; contents/listing); else the proto directory's tree digest
 * (provenance/proto-digest) or an archive's sha256; each --add archive's sha256.
 */
async function protoResources(state: BuildState, contentDigest?: string): Promise<Resource[]> {
  const def = state.definition;
  const out: Resource[] = [];
  if (contentDigest) out.push({ name: 'image contents', digest: { sha256: contentDigest }, annotations: { role: 'contents listing' } });
  const digestOf = async (path: string): Promise<{ digest?: Record<string, string>; kind: string }> => {
    try {
      const st = await lstat(path);
      if (st.isDirectory()) return { digest: { sha256: await protoTreeDigest(path) }, kind: 'proto directory (buildimage tree digest v1)' };
      return { digest: { sha256: (await digestFile(path, 'sha256')).digests.sha256.toString('hex') }, kind: 'proto archive' };
    } catch (err) {
      log.warn(`provenance: no digest of ${path}: ${oneLine(err)}`);
      return { kind: 'proto' };
    }
  };
  const proto = await digestOf(def.protoDir);
  out.push({ uri: `file://${def.protoDir}`, name: basename(def.protoDir), ...(proto.digest ? { digest: proto.digest } : {}), annotations: { role: proto.kind } });
  for (const a of def.addArchives ?? []) {
    const d = await digestOf(a.path);
    out.push({ uri: `file://${a.path}`, name: basename(a.path), ...(d.digest ? { digest: d.digest } : {}), annotations: { role: 'added archive', ...(a.dir ? { dir: a.dir } : {}) } });
  }
  // What ran in the image as root, by the digest of exactly what ran.
  for (const s of def.scripts ?? []) out.push({ uri: `file://${s.path}`, name: s.name, digest: { sha256: s.sha256 }, annotations: { role: 'script' } });
  return out;
}

export interface ProvenanceFacts {
  imageFile: string;
  image: { sha256: string; sha1: string };
  git?: GitInfo;
  /** The contents listing's digest (sha256 hex), when seal wrote one. */
  contentDigest?: string;
  finishedOn: string;
}

export async function provenanceStatement(state: BuildState, layout: Layout, f: ProvenanceFacts, env: NodeJS.ProcessEnv = process.env): Promise<Record<string, unknown>> {
  const def = recordedDefinition(state.definition);
  // Where on this machine it ran is not what the image is made from.
  const { workDir, datasetRoot, outputDir, ...parameters } = def;
  return makeStatement({
    image: { name: basename(f.imageFile), ...f.image },
    parameters,
    internal: { workDir, datasetRoot, outputDir },
    baseChain: await baseChain(state, layout),
    proto: await protoResources(state, f.contentDigest),
    packages: (state.packagesInstalled ?? []).map((p) => splitPackage(p.name)),
    ...(f.git ? { source: { remote: f.git.remote, commit: f.git.commit, branch: f.git.branch, dirty: f.git.dirty } } : {}),
    tool: { version: toolVersion(), node: process.version },
    buildId: state.buildId,
    ...(env.BUILD_URL ? { buildUrl: recordedUrl(env.BUILD_URL) } : {}),
    startedOn: state.createdAt,
    finishedOn: f.finishedOn,
  });
}

/**
 * Writes the envelope to `path`: signed when publish's key is on this
 * machine (MANTA_KEY_ID or ~/.ssh/id_rsa.pub, in ~/.ssh or the agent),
 * else unsigned with a log line saying so. Returns the keyid that signed.
 */
export async function writeProvenance(path: string, statement: unknown, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const r = await envelopeFor(statement, env);
  if (r.keyid) log.info(`provenance signed with ${r.keyid} (${r.source})`);
  else log.info(`provenance not signed here (${r.unsigned}); \`publish --state\` signs it with the Manta key`);
  await writeEnvelope(path, r.envelope);
  return r.keyid;
}
