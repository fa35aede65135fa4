/**
 * What went wrong on the wire, in a few words, and whether another attempt
 * may help; and the one shape of a line about a server's error answer.
 */
import { STATUS_CODES } from 'node:http';
import { RequestError, TimeoutError } from 'got';
import { oneLine } from '../core/errors.js';
import { redactUrl } from '../core/redact.js';
import { ProxyError } from './proxy.js';

/** A short reason for a got/socket/proxy error, and whether another attempt may help. */
export function describeNetworkError(err: unknown): { text: string; retryable: boolean; hint?: string; fromProxy?: boolean } {
  const proxyErr = err instanceof ProxyError ? err : err instanceof RequestError && err.cause instanceof ProxyError ? err.cause : undefined;
  if (proxyErr) return { text: proxyErr.message, retryable: proxyErr.retryable, hint: proxyErr.hint, fromProxy: true };
  if (err instanceof TimeoutError) {
    const connecting = ['lookup', 'connect', 'secureConnect'].includes(err.event);
    return { text: `timed out ${connecting ? 'connecting' : 'waiting for an answer'}`, retryable: true };
  }
  const code = (err as { code?: string })?.code ?? '';
  const msg = oneLine((err as Error)?.message ?? String(err));
  if (code === 'ENOTFOUND') return { text: 'host not found', retryable: false };
  if (code === 'ERR_STREAM_PREMATURE_CLOSE' || /premature close|aborted/i.test(msg)) {
    return { text: 'the connection closed before the whole answer arrived', retryable: true };
  }
  if (code === 'ECONNREFUSED') return { text: 'connection refused', retryable: true };
  if (code === 'ECONNRESET') return { text: 'connection reset', retryable: true };
  if (['EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ECONNABORTED', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN'].includes(code)) {
    return { text: msg, retryable: true };
  }
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/i.test(code)) {
    return { text: `TLS: ${msg}`, retryable: false, hint: 'a self-signed server needs --insecure (or IMGADM_INSECURE=1)' };
  }
  // Other got RequestErrors without a code are socket-level surprises: worth one more go.
  return { text: msg, retryable: err instanceof RequestError && !code };
}

/** Longest server message put into a line: an answer is untrusted and may be a page long. */
const MAX_SERVER_MESSAGE = 300;

/**
 * One line for a server's error answer, the same for Manta and IMGAPI:
 * `<where>: <status> <code>: <message>` — the server's code, or the status
 * text when it sent none; its message on one line, clipped. Our own words
 * add no brackets: the hint the command appends is the line's only one.
 * URLs in the message lose their query and credentials before it is clipped.
 * `Manta PUT /u/stor/x: 403 AuthorizationFailed: u may not write here`.
 */
export function serverErrorLine(where: string, a: { status: number; code?: string; message?: string }): string {
  const head = `${a.status} ${a.code || STATUS_CODES[a.status] || 'Error'}`;
  // A server may echo a URL it was given (a presigned one, a proxy's with credentials): never its query or user.
  let message = a.message ? oneLine(a.message).replace(/\bhttps?:\/\/[^\s"'<>]+/gi, (u) => redactUrl(u)) : '';
  if (message.length > MAX_SERVER_MESSAGE) message = `${message.slice(0, MAX_SERVER_MESSAGE)}…`;
  return `${where}: ${head}${message && message !== a.code ? `: ${message}` : ''}`;
}
