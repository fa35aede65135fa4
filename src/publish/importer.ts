/**
 * The slot for `-p`: importing published images into the updates IMGAPI
 * (what bits-upload.sh did with `updates-imgadm import -m MF -f <msign URL>`).
 * Publishing checks the importer before uploading anything, then plans and
 * applies imports through this interface after the bits are in Manta. The
 * implementation is UpdatesImporter (updates.ts); tests plug in fakes.
 */

export interface ImportRequest {
  uuid: string;
  /** The local image manifest (as published). */
  manifestFile: string;
  /** The local image file and where it was published. */
  imageFile: string;
  imagePath: string;
  size: number;
  /** The image file's sha1, checked against the manifest while planning (so it is not hashed again). */
  sha1?: string;
  /** `none` for `.sh` payloads (updates-imgadm --compression=none). */
  compression?: 'none';
  channel: string;
  /** A presigned GET URL for the published image file. It is a credential: never log it. */
  imageUrl(): Promise<string>;
}

export interface ImportStep {
  uuid: string;
  /** Plan: import, finish, add-channel, skip, conflict. Apply: imported, finished, channel-added, already there. */
  action: string;
  detail: string;
  /** The API calls it would make (plan) or made (apply), one line each, no credentials. */
  calls?: string[];
}

export interface ImgapiImporter {
  /** Which IMGAPI and as whom, for messages (no credentials). */
  readonly description: string;
  /** Optional: fail early (bad credentials, unreachable server) before anything is uploaded. */
  check?(): Promise<void>;
  /** Read-only: what apply would do (for --dry-run). */
  plan(req: ImportRequest): Promise<ImportStep>;
  /** Idempotent: a rerun after a kill finishes the import. */
  apply(req: ImportRequest): Promise<ImportStep>;
}
