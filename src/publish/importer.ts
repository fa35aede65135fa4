/**
 * The slot for `-p`: importing published images into the updates IMGAPI
 * (what bits-upload.sh did with `updates-imgadm import -m MF -f <msign URL>`).
 * Publishing plans and applies imports through this interface after the
 * bits are in Manta; no implementation exists yet, so `-p` fails with one
 * clear line once the Manta part is done.
 */

export interface ImportRequest {
  uuid: string;
  /** The local image manifest (as published). */
  manifestFile: string;
  /** The local image file and where it was published. */
  imageFile: string;
  imagePath: string;
  size: number;
  /** `none` for `.sh` payloads (updates-imgadm --compression=none). */
  compression?: 'none';
  channel: string;
  /** A presigned GET URL for the published image file. It is a credential: never log it. */
  imageUrl(): Promise<string>;
}

export interface ImportStep {
  uuid: string;
  /** e.g. import, skip (already in the channel), add-channel. */
  action: string;
  detail: string;
}

export interface ImgapiImporter {
  /** Which IMGAPI and as whom, for messages (no credentials). */
  readonly description: string;
  /** Read-only: what apply would do (for --dry-run). */
  plan(req: ImportRequest): Promise<ImportStep>;
  /** Idempotent: a rerun after a kill finishes the import. */
  apply(req: ImportRequest): Promise<ImportStep>;
}

export const IMPORT_NOT_IMPLEMENTED = 'importing into updates IMGAPI is not implemented yet';
