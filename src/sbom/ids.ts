/**
 * Names the SBOM formats share: package URLs (purl), the stable identifiers
 * derived from the image uuid (so the same image gets the same documents),
 * and licenses as SPDX expressions where they can be (pkgsrc's license
 * names mapped, npm's checked for SPDX syntax), else left as found.
 */
import { createHash } from 'node:crypto';

/** purl's percent-encoding: everything but ASCII letters, digits and `.-_~`. */
export function purlEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `pkg:pkgsrc/<name>@<version>` (libsigc++ → libsigc%2B%2B). */
export function pkgsrcPurl(name: string, version: string): string {
  return `pkg:pkgsrc/${purlEncode(name)}@${purlEncode(version)}`;
}

/** `pkg:npm/<name>@<version>`, a scope as the namespace (`@babel/core` → `pkg:npm/%40babel/core@…`); npm names are lowercased, as purl's npm type says. */
export function npmPurl(name: string, version: string): string {
  const lower = name.toLowerCase();
  const slash = lower.startsWith('@') ? lower.indexOf('/') : -1;
  const path = slash > 0 ? `${purlEncode(lower.slice(0, slash))}/${purlEncode(lower.slice(slash + 1))}` : purlEncode(lower);
  return `pkg:npm/${path}@${purlEncode(version)}`;
}

/** A node binary with a known version. */
export function nodePurl(version: string): string {
  return `pkg:generic/node@${purlEncode(version)}`;
}

/** buildimage's namespace for name-based (v5) UUIDs. */
const NAMESPACE = Buffer.from('5b9a3f5e0d7c4e8a9b1f2c3d4e5f6a7b', 'hex');

/** An RFC 4122 version 5 UUID of `name`: the same name, the same UUID. */
export function nameUuid(name: string): string {
  const h = createHash('sha1').update(NAMESPACE).update(name, 'utf8').digest().subarray(0, 16);
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** pkgsrc license names (mk/license.mk, licenses/) with an exact SPDX identifier. */
const PKGSRC_SPDX: Record<string, string> = {
  '2-clause-bsd': 'BSD-2-Clause',
  'apache-1.1': 'Apache-1.1',
  'apache-2.0': 'Apache-2.0',
  'artistic': 'Artistic-1.0',
  'artistic-2.0': 'Artistic-2.0',
  'boost-license': 'BSL-1.0',
  'cc0-1.0-universal': 'CC0-1.0',
  'cddl-1.0': 'CDDL-1.0',
  'epl-v1.0': 'EPL-1.0',
  'gnu-agpl-v3': 'AGPL-3.0-only',
  'gnu-fdl-v1.3': 'GFDL-1.3-only',
  'gnu-gpl-v1': 'GPL-1.0-only',
  'gnu-gpl-v2': 'GPL-2.0-only',
  'gnu-gpl-v3': 'GPL-3.0-only',
  'gnu-lgpl-v2': 'LGPL-2.0-only',
  'gnu-lgpl-v2.1': 'LGPL-2.1-only',
  'gnu-lgpl-v3': 'LGPL-3.0-only',
  'isc': 'ISC',
  'mit': 'MIT',
  'modified-bsd': 'BSD-3-Clause',
  'mpl-1.1': 'MPL-1.1',
  'mpl-2.0': 'MPL-2.0',
  'openssl': 'OpenSSL',
  'original-bsd': 'BSD-4-Clause',
  'php': 'PHP-3.01',
  'postgresql-license': 'PostgreSQL',
  'python-software-foundation': 'PSF-2.0',
  'ruby-license': 'Ruby',
  'sleepycat-public': 'Sleepycat',
  'unlicense': 'Unlicense',
  'x11': 'X11',
  'zlib': 'Zlib',
  'zpl-2.1': 'ZPL-2.1',
};

/** A pkgsrc LICENSE (`gnu-gpl-v2 OR mit`) as an SPDX expression, when every name in it has an SPDX identifier. */
export function pkgsrcLicenseSpdx(license: string): string | undefined {
  const tokens = license.split(/(\(|\)|\s+)/).filter((t) => t.trim());
  const out: string[] = [];
  for (const t of tokens) {
    if (t === 'AND' || t === 'OR' || t === '(' || t === ')') out.push(t);
    else if (Object.hasOwn(PKGSRC_SPDX, t)) out.push(PKGSRC_SPDX[t]);
    else return undefined;
  }
  const expr = out.join(' ').replace(/\( /g, '(').replace(/ \)/g, ')');
  return isSpdxExpression(expr) ? expr : undefined;
}

const SPDX_ID_RE = /^[A-Za-z0-9][A-Za-z0-9.-]*\+?$/;

/**
 * Whether `s` is an SPDX license expression by its syntax (SPDX 2.3 annex
 * D): ids joined by AND/OR, `WITH` an exception, parentheses. Only list
 * ids' syntax is checked (the list itself is not shipped here); a
 * LicenseRef- would need its text in the document, so it does not pass.
 */
export function isSpdxExpression(s: string): boolean {
  if (s.length > 512) return false;
  const tokens = s.split(/(\(|\)|\s+)/).filter((t) => t.trim());
  let i = 0;
  const id = (t: string | undefined) => !!t && SPDX_ID_RE.test(t) && !['AND', 'OR', 'WITH'].includes(t) && !/^(LicenseRef|DocumentRef)-/i.test(t) && !/^(UNLICENSED|SEE)$/i.test(t);
  const term = (): boolean => {
    if (tokens[i] === '(') {
      i++;
      if (!expr() || tokens[i] !== ')') return false;
      i++;
      return true;
    }
    if (!id(tokens[i])) return false;
    i++;
    if (tokens[i] === 'WITH') {
      i++;
      if (!id(tokens[i])) return false;
      i++;
    }
    return true;
  };
  const expr = (): boolean => {
    if (!term()) return false;
    while (tokens[i] === 'AND' || tokens[i] === 'OR') {
      i++;
      if (!term()) return false;
    }
    return true;
  };
  return tokens.length > 0 && expr() && i === tokens.length;
}

/** An npm license as an SPDX expression, or undefined when it is not one (`SEE LICENSE IN …`, `UNLICENSED`, free text). */
export function npmLicenseSpdx(license: string): string | undefined {
  const t = license.trim();
  return isSpdxExpression(t) ? t : undefined;
}

/** Subresource integrity (`sha512-<base64>`, maybe several) as hex digests by algorithm. */
export function integrityDigests(sri: string): Array<{ alg: 'sha1' | 'sha256' | 'sha384' | 'sha512'; hex: string }> {
  const lengths = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 } as const;
  const out: Array<{ alg: keyof typeof lengths; hex: string }> = [];
  for (const part of sri.trim().split(/\s+/).slice(0, 8)) {
    const m = /^(sha1|sha256|sha384|sha512)-([A-Za-z0-9+/]+={0,2})(?:\?.*)?$/.exec(part);
    if (!m) continue;
    const alg = m[1] as keyof typeof lengths;
    const bytes = Buffer.from(m[2], 'base64');
    if (bytes.length === lengths[alg] && !out.some((o) => o.alg === alg)) out.push({ alg, hex: bytes.toString('hex') });
  }
  return out;
}
