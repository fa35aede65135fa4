/**
 * Every dataset and path buildimage owns, named in one place. Cleanup
 * reads names back through the same functions (partialUuid), never by
 * slicing strings of its own.
 *
 *   <root>/<uuid>                          an installed image, with @final
 *   <root>/<uuid>-partial                  an image being received
 *   <root>/<build id>                      a build's zone analog
 *   <root>/<build id>@before-<stage>       with --keep-on-failure: the analog before that stage
 *   <root>/<build id>/origin               seal's read-only clone of the origin's @final, to list
 *                                          what the image changed (destroyed with the analog)
 *   <work>/locks/img.<uuid>.import.lock    one image's install lock
 *   <work>/locks/img.<uuid>.receiving      journal: that -partial is ours
 *   <work>/images/<uuid>.imgmanifest       an installed image's manifest, kept so a
 *                                          build from it needs no source
 *   <work>/builds/<build id>/              one build's own directory:
 *       lock, zone/ (the analog's mountpoint), origin/ (the origin clone's), packages.json,
 *       pkgaudit.txt, pkgaudit.junit.xml
 *   <work>/states/<build id>.json          the state of a build run without --state
 *   <work>/cache/packages/<repo key>/<sha256>-<file>
 *                                          a pkgsrc package kept by the package cache (pkgsrc/cache),
 *                                          by the sha256 of the repository directory's URL and of its bytes
 *   <work>/cache/packages/tmp/             downloads in progress, renamed into place once checked
 *   <work>/locks/package-cache.lock        held while the package cache is evicted
 */
import { join, resolve } from 'node:path';

const PARTIAL = '-partial';

export class Layout {
  readonly workDir: string;

  constructor(
    readonly datasetRoot: string,
    workDir: string,
  ) {
    this.workDir = resolve(workDir);
  }

  // ---- datasets

  imageDataset(uuid: string): string {
    return `${this.datasetRoot}/${uuid}`;
  }

  partialDataset(uuid: string): string {
    return `${this.imageDataset(uuid)}${PARTIAL}`;
  }

  /** The image uuid of a `-partial` dataset directly under the root, else undefined. */
  partialUuid(dataset: string): string | undefined {
    const prefix = `${this.datasetRoot}/`;
    if (!dataset.startsWith(prefix) || !dataset.endsWith(PARTIAL)) return undefined;
    const uuid = dataset.slice(prefix.length, -PARTIAL.length);
    return uuid && !uuid.includes('/') ? uuid : undefined;
  }

  analogDataset(buildId: string): string {
    return `${this.datasetRoot}/${buildId}`;
  }

  /** The analog as a stage found it, taken with --keep-on-failure: a rerun of that stage starts from here. */
  stageSnapshot(buildId: string, stage: string): string {
    return `${this.analogDataset(buildId)}@before-${stage}`;
  }

  /** Seal's read-only clone of the origin's @final: a child of the analog, so whatever destroys the analog takes it too. */
  originView(buildId: string): { dataset: string; mountpoint: string } {
    return { dataset: `${this.analogDataset(buildId)}/origin`, mountpoint: join(this.buildDir(buildId), 'origin') };
  }

  // ---- image installs

  get lockDir(): string {
    return join(this.workDir, 'locks');
  }

  importLock(uuid: string): string {
    return join(this.lockDir, `img.${uuid}.import.lock`);
  }

  receiveJournal(uuid: string): string {
    return join(this.lockDir, `img.${uuid}.receiving`);
  }

  get manifestDir(): string {
    return join(this.workDir, 'images');
  }

  /** The manifest an image was installed with (a ZFS user property holds at most 8 KiB: too small for one). */
  installedManifest(uuid: string): string {
    return join(this.manifestDir, `${uuid}.imgmanifest`);
  }

  // ---- builds

  get buildsDir(): string {
    return join(this.workDir, 'builds');
  }

  buildDir(buildId: string): string {
    return join(this.buildsDir, buildId);
  }

  buildLock(buildId: string): string {
    return join(this.buildDir(buildId), 'lock');
  }

  zoneMountpoint(buildId: string): string {
    return join(this.buildDir(buildId), 'zone');
  }

  /** pkgadd's reports, kept here until seal moves them beside the image. */
  reports(buildId: string): { packages: string; audit: string; auditJunit: string } {
    const dir = this.buildDir(buildId);
    return { packages: join(dir, 'packages.json'), audit: join(dir, 'pkgaudit.txt'), auditJunit: join(dir, 'pkgaudit.junit.xml') };
  }

  defaultStatePath(buildId: string): string {
    return join(this.workDir, 'states', `${buildId}.json`);
  }

  // ---- the package cache, shared by every build with this work dir

  get packageCacheDir(): string {
    return join(this.workDir, 'cache', 'packages');
  }

  get packageCacheLock(): string {
    return join(this.lockDir, 'package-cache.lock');
  }
}

/** Inside a zone dataset's mountpoint: `root/` is the zone's `/`, `config/` what the zone was given. */
export function zoneRoot(mountpoint: string): string {
  return join(mountpoint, 'root');
}

export function zoneConfig(mountpoint: string): string {
  return join(mountpoint, 'config');
}
