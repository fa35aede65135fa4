'use strict';
/*
 * Package versions and patterns, as pkg_install's dewey.c and opattern.c
 * have them: version ordering, pkg_match() (alternates, dewey ranges,
 * globs) and picking the best match.
 */

const { die } = require('./output.cjs');

const DEWEY_MODIFIERS = [
  ['alpha', -3],
  ['beta', -2],
  ['pre', -1],
  ['rc', -1],
  ['pl', 0],
  ['_', 0],
  ['.', 0],
];

function mkversion(s) {
  const v = [];
  let nb = 0;
  let i = 0;
  while (i < s.length) {
    const ch = s[i];
    if (ch >= '0' && ch <= '9') {
      let j = i + 1;
      while (j < s.length && s[j] >= '0' && s[j] <= '9') j++;
      v.push(Number(s.slice(i, j)));
      i = j;
      continue;
    }
    if (s.startsWith('nb', i)) {
      let j = i + 2;
      while (j < s.length && s[j] >= '0' && s[j] <= '9') j++;
      nb = Number(s.slice(i + 2, j) || '0');
      i = j;
      continue;
    }
    const rest = s.slice(i).toLowerCase();
    const mod = DEWEY_MODIFIERS.find(([m]) => rest.startsWith(m));
    if (mod) {
      v.push(mod[1]);
      i += mod[0].length;
      continue;
    }
    if (/[A-Za-z]/.test(ch)) {
      // A lone letter counts as ".N" with a=1 ... z=26, so 1.2e == 1.2.5.
      v.push(0, ch.toLowerCase().charCodeAt(0) - 96);
    }
    i++;
  }
  return { v, nb };
}

function versionCompare(a, b) {
  const A = mkversion(a);
  const B = mkversion(b);
  const n = Math.max(A.v.length, B.v.length);
  for (let i = 0; i < n; i++) {
    const d = (A.v[i] || 0) - (B.v[i] || 0);
    if (d) return d < 0 ? -1 : 1;
  }
  return Math.sign(A.nb - B.nb);
}

function deweyTest(version, op, ref) {
  const c = versionCompare(version, ref);
  switch (op) {
    case '<': return c < 0;
    case '<=': return c <= 0;
    case '>': return c > 0;
    case '>=': return c >= 0;
    case '==': return c === 0;
    case '!=': return c !== 0;
    default: return false;
  }
}

function readOp(s) {
  if (s.startsWith('<=') || s.startsWith('>=') || s.startsWith('==') || s.startsWith('!=')) return s.slice(0, 2);
  if (s[0] === '<' || s[0] === '>') return s[0];
  return null;
}

function deweyMatch(pattern, pkg) {
  const dash = pkg.lastIndexOf('-');
  if (dash < 0) return false;
  const sep = pattern.search(/[<>]/);
  if (sep < 0) return false;
  if (pattern.slice(0, sep) !== pkg.slice(0, dash)) return false;
  const version = pkg.slice(dash + 1);
  const op = readOp(pattern.slice(sep));
  if (!op) return false;
  const rest = pattern.slice(sep + op.length);
  const sep2 = rest.search(/[<>]/);
  if (sep2 >= 0) {
    const op2 = readOp(rest.slice(sep2));
    if (!op2) return false;
    return deweyTest(version, op, rest.slice(0, sep2)) && deweyTest(version, op2, rest.slice(sep2 + op2.length));
  }
  return deweyTest(version, op, rest);
}

/** fnmatch(3) with FNM_PERIOD, as a regular expression. */
function globRegex(glob) {
  let re = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += (i === 0 ? '(?!\\.)' : '') + '.*';
    else if (c === '?') re += (i === 0 ? '(?!\\.)' : '') + '.';
    else if (c === '[') {
      let j = i + 1;
      let cls = '';
      if (glob[j] === '!' || glob[j] === '^') {
        cls = '^';
        j++;
      }
      if (glob[j] === ']') {
        cls += '\\]';
        j++;
      }
      while (j < glob.length && glob[j] !== ']') {
        const d = glob[j];
        cls += d === '\\' || d === '^' || d === '[' ? `\\${d}` : d;
        j++;
      }
      if (j >= glob.length) re += '\\[';
      else {
        re += `[${cls}]`;
        i = j;
      }
    } else if (c === '\\' && i + 1 < glob.length) {
      i++;
      re += glob[i].replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

function globMatch(glob, name) {
  try {
    return globRegex(glob).test(name);
  } catch {
    return false;
  }
}

function quickPkgMatch(pattern, pkg) {
  const simple = (ch) => ch !== undefined && /[A-Za-z0-9-]/.test(ch);
  if (!simple(pattern[0])) return true;
  if (pattern[0] !== pkg[0]) return false;
  if (!simple(pattern[1])) return true;
  if (pattern[1] !== pkg[1]) return false;
  return true;
}

function alternateMatch(pattern, pkg) {
  const open = pattern.indexOf('{');
  let depth = 0;
  let close = -1;
  for (let i = open; i < pattern.length; i++) {
    if (pattern[i] === '{') depth++;
    else if (pattern[i] === '}' && --depth === 0) {
      close = i;
      break;
    }
  }
  if (close < 0) die(`Malformed alternate \`${pattern}'`);
  const head = pattern.slice(0, open);
  const tail = pattern.slice(close + 1);
  const alts = [];
  let cur = '';
  depth = 0;
  for (let i = open + 1; i < close; i++) {
    const c = pattern[i];
    if (c === '{') depth++;
    if (c === '}') depth--;
    if (c === ',' && depth === 0) {
      alts.push(cur);
      cur = '';
    } else cur += c;
  }
  alts.push(cur);
  return alts.some((alt) => pkgMatch(head + alt + tail, pkg));
}

/** pkg_match(): alternates, dewey, glob, exact, then "pattern-[0-9]*". */
function pkgMatch(pattern, pkg) {
  if (!quickPkgMatch(pattern, pkg)) return false;
  if (pattern.includes('{')) return alternateMatch(pattern, pkg);
  if (/[<>]/.test(pattern)) return deweyMatch(pattern, pkg);
  if (/[*?[\]]/.test(pattern) && globMatch(pattern, pkg)) return true;
  if (pattern === pkg) return true;
  return globMatch(`${pattern}-[0-9]*`, pkg);
}

function isPkgPattern(s) {
  return /[<>{}*?[\]]/.test(s);
}

/** pkg_order(): the higher version wins; equal versions fall back to string order. */
function betterOf(pattern, first, second) {
  if (first === null) return pkgMatch(pattern, second) ? second : null;
  if (!pkgMatch(pattern, second) || second.lastIndexOf('-') < 0) return first;
  const c = versionCompare(first.slice(first.lastIndexOf('-') + 1), second.slice(second.lastIndexOf('-') + 1));
  if (c > 0) return first;
  if (c < 0) return second;
  return first < second ? first : second;
}

function bestMatch(pattern, names) {
  let best = null;
  for (const n of names) best = betterOf(pattern, best, n);
  return best;
}

function splitPkgname(name) {
  const i = name.lastIndexOf('-');
  if (i <= 0) return null;
  return { base: name.slice(0, i), version: name.slice(i + 1) };
}

module.exports = { versionCompare, pkgMatch, isPkgPattern, betterOf, bestMatch, splitPkgname };
