/**
 * The provenance statement: an in-toto Statement v1 whose predicate is SLSA
 * Provenance v1, made from what a build recorded (a pure function: the
 * build gathers the facts, this says them in the standard words). Every
 * value arrives already recorded without credentials.
 */
import { z } from 'zod';

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
/** What externalParameters holds: buildimage's build definition (README, "Provenance"). */
export const BUILD_TYPE = 'urn:buildimage:build:v1';

/** An in-toto ResourceDescriptor. */
export interface Resource {
  uri?: string;
  name?: string;
  digest?: Record<string, string>;
  annotations?: Record<string, unknown>;
}

export interface ProvenanceInput {
  /** The image file: its file name, sha256 and sha1 (hex). */
  image: { name: string; sha256: string; sha1: string };
  /** The build definition as recorded (no credentials). */
  parameters: Record<string, unknown>;
  /** Settings of this build machine (dataset root, work and output dirs). */
  internal?: Record<string, unknown>;
  /** The base image, then its origins, as far as they are known. */
  baseChain: { uuid: string; name?: string; version?: string; sha1?: string }[];
  /** The proto: where it came from and its content digest (see build/provenance). */
  proto: Resource[];
  /** Packages in the image, name and resolved version. */
  packages: { name: string; version?: string }[];
  /** The proto's git checkout, when there is one. */
  source?: { remote?: string; commit: string; branch?: string; dirty: boolean };
  tool: { version: string; node: string };
  buildId: string;
  /** Jenkins' BUILD_URL, recorded without credentials. */
  buildUrl?: string;
  startedOn: string;
  finishedOn: string;
}

/** Just enough of a statement to check it: the type and the subject's digests. */
export const StatementSchema = z.object({
  _type: z.literal(STATEMENT_TYPE),
  subject: z.array(z.object({ name: z.string().max(4096).optional(), digest: z.record(z.string().max(1024)) })).min(1).max(64),
  predicateType: z.string().max(1024),
  predicate: z.record(z.unknown()).optional(),
});
export type Statement = z.infer<typeof StatementSchema>;

export function makeStatement(p: ProvenanceInput): Record<string, unknown> {
  const deps: Resource[] = [
    ...p.baseChain.map((b, i) => ({
      uri: `urn:uuid:${b.uuid}`,
      ...(b.name ? { name: `${b.name}@${b.version ?? ''}` } : {}),
      ...(b.sha1 ? { digest: { sha1: b.sha1 } } : {}),
      annotations: { role: i === 0 ? 'base image' : 'origin image', uuid: b.uuid, ...(b.version ? { version: b.version } : {}) },
    })),
    ...p.proto,
    ...(p.source
      ? [
          {
            ...(p.source.remote ? { uri: `git+${p.source.remote}` } : {}),
            digest: { gitCommit: p.source.commit },
            annotations: { role: 'source', ...(p.source.branch ? { branch: p.source.branch } : {}), dirty: p.source.dirty },
          },
        ]
      : []),
    ...p.packages.map((pkg) => ({
      uri: `pkg:pkgsrc/${encodeURIComponent(pkg.name)}${pkg.version ? `@${encodeURIComponent(pkg.version)}` : ''}`,
      name: pkg.version ? `${pkg.name}-${pkg.version}` : pkg.name,
      annotations: { role: 'package' },
    })),
  ];
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: p.image.name, digest: { sha256: p.image.sha256, sha1: p.image.sha1 } }],
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: BUILD_TYPE,
        externalParameters: p.parameters,
        ...(p.internal ? { internalParameters: p.internal } : {}),
        resolvedDependencies: deps,
      },
      runDetails: {
        builder: { id: `pkg:npm/buildimage@${p.tool.version}`, version: { buildimage: p.tool.version, node: p.tool.node } },
        metadata: {
          invocationId: p.buildUrl ?? `urn:uuid:${p.buildId}`,
          startedOn: p.startedOn,
          finishedOn: p.finishedOn,
        },
        ...(p.buildUrl ? { byproducts: [{ name: 'build id', uri: `urn:uuid:${p.buildId}` }] } : {}),
      },
    },
  };
}
