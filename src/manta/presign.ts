/**
 * Presigned Manta URLs as `msign` makes them (smartdc-auth signUrl with
 * node-manta's options): the URL itself is the credential until it
 * expires, so it goes to the one consumer that needs it (IMGAPI's
 * import-from-URL) and never into a log line: use core/redact.ts's `redactUrl` for those.
 */
import { mantaKeyId, type Signer } from '../http/signature.js';
import { encodeMantaPath, mantaBaseUrl } from './client.js';

export interface PresignOptions {
  /** MANTA_URL. */
  url: string;
  user: string;
  subuser?: string;
  signer: Signer;
  /** Unencoded Manta path, e.g. /Joyent_Dev/public/builds/x/y.zfs.gz. */
  path: string;
  /** Default ['GET'], as msign. */
  methods?: string[];
  /** Expiry in epoch seconds; default one hour from now, as msign. */
  expires?: number;
  now?: Date;
}

/** encodeURIComponent plus `! ' ( ) *`, as smartdc-auth's rfc3986(). */
export function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

export async function presignUrl(o: PresignOptions): Promise<string> {
  const base = mantaBaseUrl(o.url);
  const methods = [...(o.methods ?? ['GET'])].map((m) => m.toUpperCase()).sort();
  const method = methods.join(',');
  const expires = o.expires ?? Math.floor((o.now ?? new Date()).getTime() / 1000) + 3600;
  // The signed path must equal the request path byte for byte (encoded, no trailing slash).
  const path = base.pathname.replace(/\/+$/, '') + encodeMantaPath(o.path);
  // WHATWG URL drops a default port, as browsers and curl do in the Host header.
  const host = base.host;

  const build = (algorithm: string): { q: string; line: string } => {
    const params: Record<string, string> = {
      expires: String(expires),
      keyId: mantaKeyId(o.user, o.subuser, o.signer.fingerprint),
      algorithm: algorithm.toUpperCase(),
    };
    if (methods.length > 1) params.method = method;
    const q = Object.keys(params)
      .sort((a, b) => a.localeCompare(b))
      .map((k) => `${rfc3986(k)}=${rfc3986(params[k])}`)
      .join('&');
    return { q, line: `${method}\n${host}\n${path}\n${q}` };
  };

  let { q, line } = build(o.signer.algorithm);
  let sig = await o.signer.sign(line);
  if (sig.algorithm.toUpperCase() !== o.signer.algorithm.toUpperCase()) {
    // An agent answered with another hash (sha1 from an old agent): sign again naming it.
    ({ q, line } = build(sig.algorithm));
    sig = await o.signer.sign(line);
  }
  return `${base.protocol}//${base.host}${path}?${q}&signature=${rfc3986(sig.signature)}`;
}
