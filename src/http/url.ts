/** URLs in messages. */

/**
 * A URL fit for messages and logs: credentials and fragment dropped, a
 * query (it may carry a signature) shown as `?…`; scheme, host, port and
 * path kept. `https://u:p@h:8443/p?sig=x` → `https://h:8443/p?…`.
 */
export function redactUrl(spec: string | URL): string {
  const text = String(spec);
  try {
    const u = new URL(text);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return text.replace(/\/\/[^/@]*@/, '//').replace(/#.*$/, '').replace(/\?.*$/, '?…');
  }
}
