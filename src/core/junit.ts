/**
 * JUnit XML, the report Jenkins' test view reads (the `junit` step): one
 * home for writing it. Everything put in a report may be untrusted
 * (advisory text, package names, server answers): text and attributes are
 * escaped, and characters XML 1.0 cannot carry at all (most control
 * characters, lone surrogates, U+FFFE/U+FFFF) are written as a visible
 * `\uXXXX` instead, so the file always parses.
 */

export interface JunitCase {
  name: string;
  classname: string;
  /** Seconds. */
  time?: number;
  /** A failed case: `message` is one line; `text` the detail. */
  failure?: { message: string; type?: string; text?: string };
  /** A case that was not run, and why. */
  skipped?: string;
  /** Shown with the case (passing ones too). */
  output?: string;
}

export interface JunitSuite {
  name: string;
  cases: JunitCase[];
  timestamp?: Date;
  /** Seconds. */
  time?: number;
}

/** Code points XML 1.0 allows: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]. */
function allowed(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/** Replaces what XML cannot carry by `\uXXXX`; iterating by code point keeps surrogate pairs whole and finds lone ones. */
function representable(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    out += allowed(cp) ? ch : `\\u${cp.toString(16).padStart(4, '0')}`;
  }
  return out;
}

/** Character data: `&`, `<` and `>` escaped (the last so that `]]>` never appears); a CR as a reference, which a parser keeps. */
export function xmlText(s: string): string {
  return representable(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
}

/** An attribute value in double quotes; tabs and line breaks as references (a parser would fold them to spaces). */
export function xmlAttr(s: string): string {
  return xmlText(s).replace(/"/g, '&quot;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;');
}

const seconds = (t: number | undefined): string => (Number.isFinite(t) && t! >= 0 ? t!.toFixed(3) : '0');

/** One suite as a whole JUnit XML document. */
export function junitXml(suite: JunitSuite): string {
  const failures = suite.cases.filter((c) => c.failure).length;
  const skipped = suite.cases.filter((c) => !c.failure && c.skipped !== undefined).length;
  const counts = `tests="${suite.cases.length}" failures="${failures}" errors="0" skipped="${skipped}"`;
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${xmlAttr(suite.name)}" ${counts} time="${seconds(suite.time)}">`,
    `  <testsuite name="${xmlAttr(suite.name)}" ${counts} time="${seconds(suite.time)}"${suite.timestamp ? ` timestamp="${suite.timestamp.toISOString()}"` : ''}>`,
  ];
  for (const c of suite.cases) {
    const open = `    <testcase classname="${xmlAttr(c.classname)}" name="${xmlAttr(c.name)}" time="${seconds(c.time)}"`;
    const body: string[] = [];
    if (c.failure) {
      const type = c.failure.type ? ` type="${xmlAttr(c.failure.type)}"` : '';
      body.push(`      <failure message="${xmlAttr(c.failure.message)}"${type}>${xmlText(c.failure.text ?? c.failure.message)}</failure>`);
    } else if (c.skipped !== undefined) {
      body.push(`      <skipped message="${xmlAttr(c.skipped)}"/>`);
    }
    if (c.output) body.push(`      <system-out>${xmlText(c.output)}</system-out>`);
    lines.push(body.length ? `${open}>\n${body.join('\n')}\n    </testcase>` : `${open}/>`);
  }
  lines.push('  </testsuite>', '</testsuites>', '');
  return lines.join('\n');
}
