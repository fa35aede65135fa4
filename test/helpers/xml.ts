/**
 * A small, strict XML 1.0 reader for the tests: elements, attributes, text,
 * the five entities and character references, an optional `<?xml?>`
 * declaration. Anything else (DOCTYPE, comments, CDATA, processing
 * instructions), a character XML cannot carry, a bare `&` or `<`, `]]>` in
 * text, a duplicate attribute, a mismatched or unclosed tag, or more than
 * one root throws. What it returns is the decoded tree, so a test can
 * compare what went in with what a parser reads back.
 */

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** The element's own character data, decoded (children's not included). */
  text: string;
}

const NAME = /[A-Za-z_:][A-Za-z0-9_:.-]*/y;

function charAllowed(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

export function parseXml(doc: string): XmlElement {
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`XML: ${why} at offset ${i}: ${JSON.stringify(doc.slice(Math.max(0, i - 20), i + 20))}`);
  };
  for (const ch of doc) if (!charAllowed(ch.codePointAt(0)!)) fail(`character U+${ch.codePointAt(0)!.toString(16)} not allowed`);
  // A lone surrogate is one UTF-16 unit that for..of yields by itself: caught above (0xd800-0xdfff are not allowed).

  const decode = (raw: string, where: string): string =>
    raw.replace(/&([^;]*);?/g, (m, ref: string) => {
      if (!m.endsWith(';')) fail(`bare & in ${where}`);
      const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
      if (ref in named) return named[ref];
      const num = /^#(\d+)$/.exec(ref) ?? /^#x([0-9A-Fa-f]+)$/.exec(ref);
      if (!num) return fail(`unknown entity &${ref}; in ${where}`);
      const cp = parseInt(num[1], ref.startsWith('#x') ? 16 : 10);
      if (!charAllowed(cp)) fail(`character reference &${ref}; to a character XML does not allow`);
      return String.fromCodePoint(cp);
    });

  const name = (): string => {
    NAME.lastIndex = i;
    const m = NAME.exec(doc);
    if (!m) fail('expected a name');
    i += m![0].length;
    return m![0];
  };
  const spaces = (): number => {
    const s = i;
    while (/[ \t\r\n]/.test(doc[i] ?? '')) i++;
    return i - s;
  };

  if (doc.startsWith('<?xml')) {
    const end = doc.indexOf('?>');
    if (end < 0) fail('unclosed XML declaration');
    if (!/^<\?xml version="1\.[0-9]"( encoding="[A-Za-z0-9._-]+")?( standalone="(yes|no)")?\s*\?>$/.test(doc.slice(0, end + 2))) fail('bad XML declaration');
    i = end + 2;
  }
  spaces();
  if (doc[i] !== '<') fail('expected the root element');

  const element = (): XmlElement => {
    i++; // <
    const el: XmlElement = { name: name(), attrs: {}, children: [], text: '' };
    for (;;) {
      const sp = spaces();
      if (doc.startsWith('/>', i)) {
        i += 2;
        return el;
      }
      if (doc[i] === '>') {
        i++;
        break;
      }
      if (!sp) fail('expected a space before an attribute');
      const a = name();
      if (Object.hasOwn(el.attrs, a)) fail(`duplicate attribute ${a}`);
      spaces();
      if (doc[i] !== '=') fail('expected =');
      i++;
      spaces();
      const q = doc[i];
      if (q !== '"' && q !== "'") fail('attribute value not quoted');
      const end = doc.indexOf(q, i + 1);
      if (end < 0) fail('unclosed attribute value');
      const raw = doc.slice(i + 1, end);
      if (raw.includes('<')) fail(`< in attribute ${a}`);
      // Attribute-value normalization: literal white space becomes a space, references stay what they name.
      el.attrs[a] = decode(raw.replace(/[\t\n\r]/g, ' '), `attribute ${a}`);
      i = end + 1;
    }
    for (;;) {
      const lt = doc.indexOf('<', i);
      if (lt < 0) fail(`unclosed <${el.name}>`);
      const raw = doc.slice(i, lt);
      if (raw.includes(']]>')) fail(']]> in text');
      // End-of-line handling: a literal CR LF or CR reads as LF; a reference (&#13;) stays a CR.
      el.text += decode(raw.replace(/\r\n?/g, '\n'), `<${el.name}> text`);
      i = lt;
      if (doc.startsWith('</', i)) {
        i += 2;
        const closing = name();
        if (closing !== el.name) fail(`</${closing}> closes <${el.name}>`);
        spaces();
        if (doc[i] !== '>') fail('expected >');
        i++;
        return el;
      }
      if (doc.startsWith('<!', i) || doc.startsWith('<?', i)) fail('comments, CDATA, DOCTYPE and processing instructions are not expected');
      el.children.push(element());
    }
  };

  const root = element();
  spaces();
  if (i !== doc.length) fail('content after the root element');
  return root;
}

/** Every descendant (and the element itself) named `name`, in document order. */
export function findAll(el: XmlElement, name: string): XmlElement[] {
  return [...(el.name === name ? [el] : []), ...el.children.flatMap((c) => findAll(c, name))];
}
