/** What went wrong on the wire, in a few words, and whether another attempt may help. */
import { RequestError, TimeoutError } from 'got';
import { oneLine } from '../core/errors.js';
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
