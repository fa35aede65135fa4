/**
 * Where bits are published: Manta, or a local (often NFS) directory for
 * -L. One plan is applied to either; the store only answers "what is at
 * this path" and performs single, idempotent writes.
 */
export type StoreEntry =
  | { type: 'directory' }
  /** md5: base64, as Manta's Content-MD5. */
  | { type: 'object'; md5?: string; size: number }
  | { type: 'link'; target: string };

export interface PutFileMeta {
  size: number;
  /** base64 MD5 of the local file. */
  md5: string;
  contentType: string;
}

export interface Store {
  readonly kind: 'manta' | 'local';
  /** Where things go, for messages (no credentials). */
  readonly description: string;
  /** Directories that always exist and are never created (Manta's /<user>/stor, /<user>/public; local /). */
  isRoot(path: string): boolean;
  /** What is at `path`; undefined only when it is really absent (an auth or network error throws). */
  stat(path: string): Promise<StoreEntry | undefined>;
  /** Create one directory whose parent exists. */
  mkdir(path: string): Promise<void>;
  /** Store a local file, streamed, verified against meta.md5 on the way; `onProgress` gets the bytes sent so far. */
  putFile(path: string, localFile: string, meta: PutFileMeta, onProgress?: (bytes: number) => void): Promise<void>;
  putText(path: string, body: string, contentType: string): Promise<void>;
  /** `<branch>-latest`: is it pointing at `target` (a stamp directory) already? */
  pointsAt(path: string, target: string): Promise<boolean>;
  setPointer(path: string, target: string): Promise<void>;
  /** How artifacts.txt names a published path. */
  artifactRef(path: string): string;
  /** A time-limited GET URL for a published object (Manta only); never log it. */
  signedUrl?(path: string): Promise<string>;
  close(): void;
}

/** What putting a file into a store is called in the output: Manta uploads, -L copies. */
export interface TransferWords {
  verb: 'upload' | 'copy';
  doing: 'uploading' | 'copying';
  done: 'uploaded' | 'copied';
}

/** The one place the verb comes from (apply's log lines, the plan and the summary). */
export function transferWords(kind: Store['kind']): TransferWords {
  return kind === 'local' ? { verb: 'copy', doing: 'copying', done: 'copied' } : { verb: 'upload', doing: 'uploading', done: 'uploaded' };
}
