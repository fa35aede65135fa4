/**
 * The `-p pkg1,pkg2,...` list. The original buildimage's contract is kept:
 * only `[A-Za-z0-9-_.+]` in names (so no dewey patterns such as `foo>=1`,
 * which would need quoting rules of their own); on top of it we refuse what
 * would make `pkg_add -U <names>` misbehave.
 */
import { UsageError } from '../core/errors.js';

export const MAX_PACKAGES = 500;
export const MAX_PACKAGE_NAME_LENGTH = 255;

const NAME_CHARS_RE = /^[A-Za-z0-9\-_.+]+$/;

/** Names, in order, duplicates dropped. An empty flag means no packages. */
export function parsePackageList(flag: string): string[] {
  if (flag === '') return [];
  const items = flag.split(',');
  if (items.length > MAX_PACKAGES) {
    throw new UsageError(`too many packages in -p: ${items.length} (max ${MAX_PACKAGES})`);
  }
  items.forEach((name) => checkPackageName(name));
  return [...new Set(items)];
}

/** The -p rules for one name; `where` says where it was written ("-p", "lockfile X"). */
export function checkPackageName(name: string, where = '-p'): void {
  if (name === '') {
    throw new UsageError(`empty package name in ${where}${where === '-p' ? ' (check for ",," or a leading/trailing ",")' : ''}`);
  }
  if (name.length > MAX_PACKAGE_NAME_LENGTH) {
    throw new UsageError(`package name "${name.slice(0, 40)}…" in ${where} is too long: ${name.length} characters (max ${MAX_PACKAGE_NAME_LENGTH})`);
  }
  if (!NAME_CHARS_RE.test(name)) {
    throw new UsageError(`invalid package name ${JSON.stringify(name.slice(0, 80))} in ${where}: only letters, digits and - _ . + are allowed`);
  }
  // pkg_add would take it as an option.
  if (name.startsWith('-')) {
    throw new UsageError(`invalid package name "${name}" in ${where}: it must not start with "-"`);
  }
  // pkg_add treats these as paths to the current/parent directory.
  if (name === '.' || name === '..') {
    throw new UsageError(`invalid package name "${name}" in ${where}`);
  }
}
