/**
 * A repository's pkg_summary(5) as the package cache reads it: per package
 * file, the size and digest the repository vouches for. The text comes
 * from the network: every value is checked, nothing unknown is trusted.
 */

/** FILE_CKSUM's algorithms we can check (`ALG HEX`, as pkg_summary-utils and pkgsrc-rs write it; case-insensitive). */
const CKSUM_ALGS: Record<string, { alg: 'md5' | 'sha1' | 'sha256' | 'sha512'; hexLength: number }> = {
  md5: { alg: 'md5', hexLength: 32 },
  sha1: { alg: 'sha1', hexLength: 40 },
  sha256: { alg: 'sha256', hexLength: 64 },
  sha512: { alg: 'sha512', hexLength: 128 },
};

/** What the summary says about one package file. */
export interface SummaryFile {
  pkgname: string;
  /** FILE_NAME, else `<PKGNAME>.tgz` (pkgin's rule). */
  fileName: string;
  /** FILE_SIZE in bytes. */
  size: number;
  /** FILE_CKSUM when given in a form we can check; `unknown` when given in one we cannot (the file is then not cached). */
  cksum?: { alg: 'md5' | 'sha1' | 'sha256' | 'sha512'; hex: string } | 'unknown';
}

/** The file names a package file may have in a repository (and so in the cache): one path component, a package suffix. */
const FILE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+,~-]{0,250}\.(tgz|tbz)$/;

export function isPackageFileName(name: string): boolean {
  return FILE_NAME_RE.test(name);
}

/** Largest FILE_SIZE believed (a package file of more than 64 GiB is a broken summary). */
const MAX_FILE_SIZE = 64 * 1024 ** 3;

function parseCksum(value: string): SummaryFile['cksum'] {
  const m = /^([A-Za-z0-9]+)\s+([0-9A-Fa-f]+)$/.exec(value.trim());
  const known = m ? CKSUM_ALGS[m[1].toLowerCase()] : undefined;
  if (!m || !known || m[2].length !== known.hexLength) return 'unknown';
  return { alg: known.alg, hex: m[2].toLowerCase() };
}

/**
 * Package files by FILE_NAME. A block without a valid PKGNAME, file name or
 * FILE_SIZE is left out (its file is then served uncached); a file named
 * twice is left out too, as the summary does not say which one is meant.
 */
export function parseSummaryFiles(text: string): Map<string, SummaryFile> {
  const out = new Map<string, SummaryFile>();
  const twice = new Set<string>();
  for (const block of text.split(/\n[ \t]*\n/)) {
    const vars = new Map<string, string>();
    for (const line of block.split('\n')) {
      const eq = line.indexOf('=');
      if (eq <= 0) continue;
      const key = line.slice(0, eq);
      if (key === 'PKGNAME' || key === 'FILE_NAME' || key === 'FILE_SIZE' || key === 'FILE_CKSUM') vars.set(key, line.slice(eq + 1).trim());
    }
    const pkgname = vars.get('PKGNAME');
    if (!pkgname) continue;
    const fileName = vars.get('FILE_NAME') || `${pkgname}.tgz`;
    const sizeText = vars.get('FILE_SIZE') ?? '';
    const size = /^\d{1,12}$/.test(sizeText) ? Number(sizeText) : NaN;
    if (!isPackageFileName(fileName) || !Number.isSafeInteger(size) || size > MAX_FILE_SIZE) continue;
    if (out.has(fileName)) twice.add(fileName);
    const cksum = vars.has('FILE_CKSUM') ? parseCksum(vars.get('FILE_CKSUM')!) : undefined;
    out.set(fileName, { pkgname, fileName, size, ...(cksum ? { cksum } : {}) });
  }
  for (const name of twice) out.delete(name);
  return out;
}
