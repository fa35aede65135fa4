/** What every stage gets: the state (with its file) and the host adapters. */
import { join } from 'node:path';
import { Zfs } from './host/zfs.js';
import { buildWorkDir, type StateFile } from './state.js';

export interface StageContext {
  zfs: Zfs;
  sf: StateFile;
  /** Per-step timeout for commands run in the chroot, ms. */
  stepTimeoutMs: number;
}

export function lockDir(workDir: string): string {
  return join(workDir, 'locks');
}

/** Where this build keeps its mountpoint and temp files. */
export function buildDir(sf: StateFile): string {
  return buildWorkDir(sf.state);
}

export function zoneMountpoint(sf: StateFile): string {
  return join(buildDir(sf), 'zone');
}
