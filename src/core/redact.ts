/**
 * Credentials out of messages and records. A URL may carry a user and
 * password, and a query may carry a token or a signature; neither may
 * reach a log line, the state file, build-info.json or an image's motd.
 */

const SCHEME_RE = /^[a-z][a-z0-9+.-]*:\/\//i;
/** Query keys whose values are not secret and worth keeping in records. */
const PLAIN_QUERY_KEYS = new Set(['channel']);

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

/**
 * How a URL-valued setting is recorded (state file, build-info.json, motd,
 * logs): scheme, host, port and path kept, user and password and fragment
 * dropped, the query's keys kept with their values replaced by `…` (but
 * `channel`'s). Text that is not a URL is kept, but an scp-like
 * `user:password@host:path` loses its `user:password@`. A value with
 * nothing to hide comes back unchanged.
 * `https://u:p@h/p?token=x&channel=dev` → `https://h/p?token=…&channel=dev`.
 */
export function recordedUrl(text: string): string {
  if (!SCHEME_RE.test(text)) {
    // scp-like git remotes: git@host:path keeps its (non-secret) user; user:pw@host:path does not.
    return text.replace(/^[^@\s/]*:[^@\s/]*@/, '').replace(/\/\/[^/@\s]*@/g, '//');
  }
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return text.replace(/\/\/[^/@]*@/, '//').replace(/#.*$/, '').replace(/\?.*$/, '?…');
  }
  if (!u.username && !u.password && !u.search && !u.hash && !/\/\/[^/]*@/.test(text)) return text;
  const keys = [...u.searchParams.keys()];
  const query = keys.length
    ? `?${keys.map((k) => `${encodeURIComponent(k)}=${PLAIN_QUERY_KEYS.has(k) ? encodeURIComponent(u.searchParams.get(k) ?? '') : '…'}`).join('&')}`
    : '';
  const path = u.pathname === '/' && !query ? '' : u.pathname;
  return `${u.protocol}//${u.host}${path}${query}`;
}

/** Whether recording `text` hides something (it had credentials, a query or a fragment). */
export function hasUrlSecrets(text: string): boolean {
  return recordedUrl(text) !== text;
}
