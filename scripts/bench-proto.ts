/**
 * A realistic, deterministic proto for the benchmark: a node service as
 * Triton's builds make them (`opt/smartdc/<svc>/` with a node binary,
 * `node_modules/` of many small JS files, some native addons, `.bin`
 * symlinks, a boot script, SMF manifests). A fixed seed gives the same
 * bytes every run; `scale` multiplies the package count and the binaries,
 * so 1× is ~20k files / ~250 MB and 4× ~80k files / ~1 GB.
 */
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** xorshift32 with a splitmix-style seed: fast, seedable, good enough for content. */
class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) >>> 0) || 1;
    for (let i = 0; i < 16; i++) this.next();
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  int(n: number): number {
    return this.next() % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
}

const WORDS = (
  'function return const let var if else for while module exports require this new class extends ' +
  'async await Promise resolve reject callback err error null undefined true false typeof object string ' +
  'number length push map filter reduce forEach keys values assert options opts config log debug info ' +
  'warn buffer stream pipe write read end on emit once listener socket request response headers body ' +
  'status path join dirname basename parse stringify JSON Object Array prototype call apply bind'
).split(' ');
const PUNCT = ['(', ')', '{', '}', ';', ',', '.', ' = ', ' === ', ' && ', ' || ', '[', ']', ': ', "'", '\n  ', '\n    ', '\n'];

/** JS-like text: a vocabulary and punctuation, compresses ~4× as real JS does. */
function jsText(rng: Rng, size: number): Buffer {
  const parts: string[] = ["'use strict';\n\n"];
  let n = parts[0].length;
  while (n < size) {
    const w = rng.int(3) === 0 ? rng.pick(PUNCT) : rng.pick(WORDS) + (rng.int(8) === 0 ? String(rng.int(1000)) : '');
    parts.push(w);
    n += w.length;
    if (rng.int(12) === 0) {
      parts.push(' ');
      n++;
    }
  }
  return Buffer.from(parts.join('').slice(0, size));
}

/** Machine-code-like bytes: runs of random bytes and repeats, compresses ~2×. */
function binary(rng: Rng, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let i = 0;
  while (i < size) {
    const run = 64 + rng.int(512);
    if (rng.int(2) === 0 || i < 1024) {
      for (let j = 0; j < run && i < size; j += 4) {
        const v = rng.next();
        for (let k = 0; k < 4 && i < size; k++) buf[i++] = (v >>> (k * 8)) & 0xff;
      }
    } else {
      const back = 1 + rng.int(Math.min(i, 4096));
      for (let j = 0; j < run && i < size; j++, i++) buf[i] = buf[i - back]!;
    }
  }
  return buf;
}

export interface ProtoStats {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
}

/** Writes the proto into `dir` (which must not exist or be empty). */
export function writeBenchProto(dir: string, opts: { scale?: number; seed?: number } = {}): ProtoStats {
  const scale = opts.scale ?? 1;
  const rng = new Rng(opts.seed ?? 20250115);
  const stats: ProtoStats = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  const mkdir = (d: string) => {
    mkdirSync(d, { recursive: true });
    stats.dirs++;
  };
  const file = (p: string, data: Buffer | string, mode = 0o644) => {
    writeFileSync(p, data, { mode });
    stats.files++;
    stats.bytes += data.length;
  };
  const svc = join(dir, 'opt/smartdc/benchsvc');
  mkdir(join(svc, 'node/bin'));
  mkdir(join(svc, 'node/lib'));
  mkdir(join(svc, 'node_modules/.bin'));
  mkdir(join(svc, 'lib'));
  mkdir(join(svc, 'smf/manifests'));
  mkdir(join(dir, 'opt/smartdc/boot'));

  // The node runtime: one large binary per scale unit (a build ships one node; at 4× think 4 services).
  for (let s = 0; s < scale; s++) {
    file(join(svc, `node/bin/node${s ? s : ''}`), binary(rng, 84 * 1024 * 1024), 0o755);
  }
  file(join(dir, 'opt/smartdc/boot/setup.sh'), '#!/bin/bash\nset -o errexit\necho "setting up benchsvc"\n', 0o755);
  file(join(svc, 'smf/manifests/benchsvc.xml'), '<?xml version="1.0"?>\n<service_bundle type="manifest" name="benchsvc"/>\n');
  file(join(svc, 'package.json'), JSON.stringify({ name: 'benchsvc', version: '1.0.0' }, null, 2) + '\n');
  for (let i = 0; i < 40; i++) file(join(svc, `lib/mod${i}.js`), jsText(rng, 2000 + rng.int(30000)));

  // node_modules: ~660 packages per scale unit, nested like npm's trees.
  const packages = 660 * scale;
  for (let p = 0; p < packages; p++) {
    const name = `pkg-${p.toString(36)}-${rng.pick(WORDS).toLowerCase()}`;
    const nested = p > 50 && rng.int(5) === 0;
    const base = nested
      ? join(svc, 'node_modules', `pkg-${rng.int(50).toString(36)}-nest${p}`, 'node_modules', name)
      : join(svc, 'node_modules', name);
    mkdir(join(base, 'lib'));
    file(join(base, 'package.json'), JSON.stringify({ name, version: `${rng.int(9)}.${rng.int(20)}.${rng.int(30)}`, main: 'lib/index.js' }, null, 2) + '\n');
    file(join(base, 'README.md'), jsText(rng, 500 + rng.int(6000)));
    if (rng.int(3) === 0) file(join(base, 'LICENSE'), 'Permission is hereby granted, free of charge, to any person obtaining a copy\n'.repeat(12));
    const nFiles = 8 + rng.int(40);
    const sub = rng.int(3) === 0 ? ['lib', 'lib/internal', 'lib/util'] : ['lib'];
    for (const s of sub) if (s !== 'lib') mkdir(join(base, s));
    for (let f = 0; f < nFiles; f++) {
      // Mostly small: median ~3 KB, a long tail to ~60 KB.
      const size = rng.int(10) === 0 ? 8000 + rng.int(72000) : 200 + rng.int(6000);
      file(join(base, rng.pick(sub), `f${f}.js`), jsText(rng, size));
    }
    if (rng.int(10) === 0) {
      mkdir(join(base, 'bin'));
      file(join(base, 'bin/cli.js'), '#!/usr/bin/env node\nrequire("../lib/index.js");\n', 0o755);
      if (!nested) {
        symlinkSync(`../${name}/bin/cli.js`, join(svc, 'node_modules/.bin', name));
        stats.symlinks++;
      }
    }
    if (rng.int(16) === 0) {
      mkdir(join(base, 'build/Release'));
      file(join(base, 'build/Release/addon.node'), binary(rng, 100_000 + rng.int(1_400_000)), 0o755);
    }
  }
  return stats;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2];
  const scale = Number(process.argv[3] ?? 1);
  rmSync(dir, { recursive: true, force: true });
  const t0 = Date.now();
  const s = writeBenchProto(dir, { scale });
  console.log(JSON.stringify({ ...s, mb: s.bytes / 1e6, secs: (Date.now() - t0) / 1000 }));
}
