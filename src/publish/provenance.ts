/**
 * The build's provenance at publish: a build sealed where publish's key was
 * not (no MANTA_KEY_ID, no agent) left its envelope unsigned; `publish
 * --state` signs it before anything is uploaded, with the key it publishes
 * with. Only the build's own output is ever signed, never a file found in
 * the bits dir (publish is no signing service for whatever someone's make
 * put there), and only when its subject is the image beside it, by the
 * sha256 the plan just read.
 */
import { basename } from 'node:path';
import { PublishError, oneLine } from '../core/errors.js';
import { log } from '../core/log.js';
import type { Signer } from '../http/signature.js';
import { sha256Fingerprint } from '../http/signature.js';
import { decodeBase64, signEnvelope } from '../provenance/dsse.js';
import { PROVENANCE_SUFFIX, readEnvelope, writeEnvelope } from '../provenance/envelope-file.js';
import { StatementSchema } from '../provenance/statement.js';
import type { PlannedFile } from './plan.js';

/**
 * Signs each unsigned provenance among `outputs` (--state's files), checked
 * against its image among `files`; returns the planned files it rewrote.
 * Without a signer, or in a dry run, it says what it would do.
 */
export async function signBuildProvenance(files: PlannedFile[], outputs: string[], signer: Signer | undefined, dryRun: boolean): Promise<PlannedFile[]> {
  const changed: PlannedFile[] = [];
  for (const out of outputs.filter((o) => o.endsWith(PROVENANCE_SUFFIX))) {
    const f = files.find((x) => x.source === out);
    if (!f) continue;
    const fail = (why: string) => new PublishError(`build output ${out} ${why}; not publishing it`, { hint: 'build again' });
    const env = await readEnvelope(out).catch((err: Error) => {
      throw fail(oneLine(err));
    });
    if (env.signatures.length) continue;
    let subject: { name?: string; digest: Record<string, string> } | undefined;
    try {
      subject = StatementSchema.parse(JSON.parse(decodeBase64(env.payload)?.toString('utf8') ?? '')).subject[0];
    } catch {
      throw fail('is not an in-toto statement');
    }
    const image = files.find((x) => outputs.includes(x.source) && basename(x.source) === subject.name);
    if (!image || image.sha256 !== subject.digest.sha256) {
      throw fail(`names an image (${subject.name ?? '?'}, sha256 ${subject.digest.sha256 ?? '?'}) that is not this build's as published`);
    }
    if (!signer) {
      log.warn(`publishing ${f.rel} unsigned: no key to sign it with (MANTA_KEY_ID, ~/.ssh, SSH_AUTH_SOCK)`);
      continue;
    }
    const keyid = sha256Fingerprint(signer.info.blob);
    if (dryRun) {
      log.info(`dry run: would sign ${f.rel} with ${keyid}`);
      continue;
    }
    const signed = await signEnvelope(env, signer).catch((err: unknown) => {
      throw new PublishError(`cannot sign ${out} with ${keyid} (${signer.source}): ${oneLine(err)}`, { hint: 'check MANTA_KEY_ID, ~/.ssh and SSH_AUTH_SOCK' });
    });
    await writeEnvelope(out, signed);
    log.info(`signed ${f.rel} with ${keyid} (${signer.source})`);
    changed.push(f);
  }
  return changed;
}
