/**
 * build:done: writes <prefix>-<version>.sizes.txt into SIZE_REPORT_DIR (else
 * the current directory): the plugin's own file, not one of the build's
 * outputs (publish does not upload it; the build's cleanup does not own it).
 * Written to a new temp file and renamed: never through a link.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { constants } from 'node:fs';
import { measured, render } from './sizes.js';

export default async function writeSizeReport(options) {
  if (options.version !== 1) return;
  const m = measured.get(options.buildId);
  measured.delete(options.buildId);
  if (!options.ok || !m || !options.outputs?.manifest) return;
  const stem = basename(options.outputs.manifest).replace(/\.imgmanifest$/, '');
  const dir = resolve(process.env.SIZE_REPORT_DIR || '.');
  const path = join(dir, `${stem}.sizes.txt`);
  const temp = join(dir, `.${stem}.sizes.txt.${randomBytes(6).toString('hex')}`);
  const fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    await fh.writeFile(render(m, `${stem} (image ${options.imageUuid})`));
  } finally {
    await fh.close();
  }
  await rename(temp, path).catch(async (err) => {
    await rm(temp, { force: true });
    throw err;
  });
  // stderr: stdout is the command's own output (`build --json`'s result).
  process.stderr.write(`size report: ${path}\n`);
}
