/**
 * The layering in ARCHITECTURE.md, enforced: every file of src/ is in a
 * room the rooms table lists, and imports only its own room and the rooms
 * that table lets it import. Nothing in src/ or commands/ reaches into the
 * test world (testbed/, test/, scripts/).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { REPO } from '../helpers/cli.js';

const START = '<!-- rooms: read by test/unit/boundaries.test.ts -->';
const END = '<!-- end of rooms -->';

/** room → the rooms it may import, from ARCHITECTURE.md. */
export function roomsTable(markdown: string): Map<string, Set<string>> {
  const start = markdown.indexOf(START);
  const end = markdown.indexOf(END);
  assert.ok(start >= 0 && end > start, 'ARCHITECTURE.md has the rooms table markers');
  const rooms = new Map<string, Set<string>>();
  for (const line of markdown.slice(start, end).split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const room = /^`([a-z-]+)`$/.exec(cells[1] ?? '')?.[1];
    if (!room) continue;
    const allowed = [...(cells[3] ?? '').matchAll(/`([a-z-]+)`/g)].map((m) => m[1]);
    rooms.set(room, new Set(allowed));
  }
  return rooms;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative import specifiers: static, type-only, re-exports and dynamic import(). */
export function importsOf(source: string): string[] {
  const found = new Set<string>();
  for (const m of source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)(['"])(\.{1,2}\/[^'"]+)\1/gm)) found.add(m[2]);
  return [...found];
}

interface Violation {
  file: string;
  target: string;
  why: string;
}

export function violations(repo: string, rooms: Map<string, Set<string>>): Violation[] {
  const src = join(repo, 'src');
  const out: Violation[] = [];
  const roomOf = (abs: string): string | undefined => {
    const rel = relative(src, abs);
    return rel.startsWith('..') || !rel.includes(sep) ? undefined : rel.split(sep)[0];
  };
  const outside = (abs: string) => ['testbed', 'test', 'scripts'].some((d) => !relative(join(repo, d), abs).startsWith('..'));
  for (const file of [...walk(src), ...walk(join(repo, 'commands'))]) {
    const from = roomOf(file);
    const rel = relative(repo, file);
    if (file.startsWith(src + sep)) {
      if (!from) out.push({ file: rel, target: '', why: 'a loose file in src/: put it in a room' });
      else if (!rooms.has(from)) out.push({ file: rel, target: '', why: `room ${from} is not in ARCHITECTURE.md's table` });
    }
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec);
      const to = roomOf(target);
      if (outside(target)) out.push({ file: rel, target: spec, why: 'the product imports the test world' });
      else if (from && to && to !== from && !rooms.get(from)?.has(to)) out.push({ file: rel, target: spec, why: `${from} may not import ${to}` });
    }
  }
  return out;
}

describe('room boundaries (ARCHITECTURE.md)', () => {
  const rooms = roomsTable(readFileSync(join(REPO, 'ARCHITECTURE.md'), 'utf8'));

  it('the table lists every room of src/, each allowed room being one of them', () => {
    const dirs = readdirSync(join(REPO, 'src')).filter((d) => statSync(join(REPO, 'src', d)).isDirectory()).sort();
    assert.deepEqual([...rooms.keys()].sort(), dirs);
    for (const [room, allowed] of rooms) for (const a of allowed) assert.ok(rooms.has(a), `${room} may import unknown room ${a}`);
  });

  it('the layers have no cycle: a room never reaches back to itself through what it may import', () => {
    const reaches = (from: string, seen = new Set<string>()): Set<string> => {
      for (const to of rooms.get(from) ?? []) if (!seen.has(to)) reaches(to, seen.add(to));
      return seen;
    };
    for (const room of rooms.keys()) assert.ok(!reaches(room).has(room), `${room} reaches itself`);
  });

  it('every import in src/ and commands/ keeps to the table', () => {
    const found = violations(REPO, rooms);
    assert.deepEqual(found.map((v) => `${v.file} → ${v.target}: ${v.why}`), []);
  });

  it('no file of src/ reaches back to itself through its imports (type imports included)', () => {
    const graph = new Map<string, string[]>();
    for (const file of walk(join(REPO, 'src'))) {
      graph.set(file, importsOf(readFileSync(file, 'utf8')).map((spec) => resolve(dirname(file), spec).replace(/\.js$/, '.ts')));
    }
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, path: string[]): void => {
      state.set(f, 'open');
      for (const to of graph.get(f) ?? []) {
        if (state.get(to) === 'open') cycles.push([...path.slice(path.indexOf(to)), to].map((p) => relative(REPO, p)).join(' → '));
        else if (!state.has(to)) visit(to, [...path, to]);
      }
      state.set(f, 'done');
    };
    for (const f of graph.keys()) if (!state.has(f)) visit(f, [f]);
    assert.deepEqual(cycles, []);
  });

  it('catches an import against the layers, a loose file and a reach into the test world', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'bi-rooms-'));
    try {
      const put = (rel: string, text: string) => {
        mkdirSync(dirname(join(tmp, rel)), { recursive: true });
        writeFileSync(join(tmp, rel), text);
      };
      put('src/core/a.ts', "import { z } from '../host/z.js';\nexport const a = 1;\n");
      put('src/host/z.ts', "import { a } from '../core/a.js';\nconst w = await import('./w.js');\n");
      put('src/host/w.ts', "export type { T } from '../../testbed/pool.js';\n");
      put('src/loose.ts', 'export {};\n');
      put('commands/c.ts', "import { z } from '../src/host/z.js';\n");
      const table = roomsTable(`${START}\n| \`core\` | x | |\n| \`host\` | x | \`core\` |\n${END}`);
      const found = violations(tmp, table).map((v) => `${v.file} ${v.target} ${v.why}`).sort();
      assert.deepEqual(found, [
        'src/core/a.ts ../host/z.js core may not import host',
        'src/host/w.ts ../../testbed/pool.js the product imports the test world',
        'src/loose.ts  a loose file in src/: put it in a room',
      ]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
