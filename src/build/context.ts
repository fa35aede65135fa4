/** What every stage gets: the state (with its file), where things go, and the host adapters. */
import type { Layout } from '../core/layout.js';
import type { Zfs } from '../host/zfs.js';
import type { StateFile } from './state.js';

export interface StageContext {
  zfs: Zfs;
  sf: StateFile;
  /** The build's datasets and paths (its dataset root and work dir). */
  layout: Layout;
  /** Per-step timeout for commands run in the chroot, ms. */
  stepTimeoutMs: number;
}
