/**
 * HTTP(S) proxies from http_proxy/https_proxy/all_proxy/no_proxy as curl
 * reads them (got has none built in): the agents that send a request
 * through one, and the error a proxy's refusal becomes.
 */
import http from 'node:http';
import https from 'node:https';
import net, { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { BuildError, oneLine } from '../core/errors.js';
import { redactUrl } from '../core/redact.js';

/** A proxy refused or failed a request (a CONNECT answer, or no connection at all). */
export class ProxyError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/**
 * The proxy for `target` from the environment, or undefined: `<scheme>_proxy`
 * (lower case first, then upper case), then `all_proxy`; `no_proxy` excludes.
 */
export function proxyFor(target: URL, env: NodeJS.ProcessEnv = process.env): URL | undefined {
  const scheme = target.protocol.replace(/:$/, '');
  const raw = env[`${scheme}_proxy`] || env[`${scheme.toUpperCase()}_PROXY`] || env.all_proxy || env.ALL_PROXY;
  if (!raw) return undefined;
  if (noProxyMatches(target, env.no_proxy || env.NO_PROXY || '')) return undefined;
  let proxy: URL;
  try {
    // curl accepts "host:port" too.
    proxy = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    throw new BuildError(`invalid proxy URL in ${scheme}_proxy: ${JSON.stringify(redactUrl(raw))}`);
  }
  if (proxy.protocol !== 'http:' && proxy.protocol !== 'https:') {
    throw new BuildError(`unsupported proxy ${redactUrl(proxy)}: only http:// and https:// proxies are supported`);
  }
  return proxy;
}

/**
 * no_proxy as curl reads it: comma/space separated; `*` = everything; an
 * entry matches the host itself and its subdomains (leading `.` or `*.`
 * ignored); `host:port` entries only that port. IPs match exactly.
 */
export function noProxyMatches(target: URL, noProxy: string): boolean {
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = target.port || (target.protocol === 'https:' ? '443' : '80');
  for (let entry of noProxy.split(/[\s,]+/)) {
    entry = entry.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    let entryPort: string | undefined;
    const m = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(entry);
    if (m && (m[2] !== undefined) && !(isIP(entry) === 6)) {
      entry = m[1]!;
      entryPort = m[2];
    } else if (entry.startsWith('[')) {
      entry = entry.replace(/^\[|\]$/g, '');
    }
    if (entryPort && entryPort !== port) continue;
    entry = entry.replace(/^\*?\.+/, '');
    if (!entry) continue;
    if (host === entry) return true;
    if (!isIP(host) && host.endsWith(`.${entry}`)) return true;
  }
  return false;
}

function proxyAuthorization(proxy: URL): string | undefined {
  if (!proxy.username && !proxy.password) return undefined;
  const creds = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return `Basic ${Buffer.from(creds).toString('base64')}`;
}

type AddRequest = { addRequest(req: http.ClientRequest, options: Record<string, unknown>): void };

/** For http:// targets: connect to the proxy and send the request with an absolute URI. */
export class HttpProxyAgent extends http.Agent {
  constructor(private readonly proxy: URL) {
    super({ keepAlive: false });
  }

  addRequest(req: http.ClientRequest, options: Record<string, unknown>): void {
    const host = req.getHeader('host') ?? `${String(options.host)}:${String(options.port)}`;
    req.path = `http://${String(host)}${req.path}`;
    const auth = proxyAuthorization(this.proxy);
    if (auth) req.setHeader('proxy-authorization', auth);
    const port = Number(this.proxy.port) || (this.proxy.protocol === 'https:' ? 443 : 80);
    const hostname = this.proxy.hostname.replace(/^\[|\]$/g, '');
    (http.Agent.prototype as unknown as AddRequest).addRequest.call(this, req, { ...options, host: hostname, hostname, port, servername: undefined });
  }

  createConnection(options: Record<string, unknown>): Socket {
    const host = String(options.host);
    const port = Number(options.port);
    // An https:// proxy is reached over TLS; the request inside stays plain HTTP.
    if (this.proxy.protocol === 'https:') return tls.connect({ host, port, servername: isIP(host) ? undefined : host });
    return net.connect({ host, port });
  }
}

/** For https:// targets: a CONNECT tunnel through the proxy, then TLS to the target inside it. */
export class HttpsTunnelAgent extends https.Agent {
  constructor(
    private readonly proxy: URL,
    private readonly connectTimeoutMs: number,
  ) {
    super({ keepAlive: false });
  }

  // Node's Agent accepts an async createConnection: return nothing and call back later.
  createConnection(options: http.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): undefined {
    const cb = callback!;
    const host = String(options.host ?? options.hostname);
    const port = Number(options.port) || 443;
    const target = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
    const headers: Record<string, string> = { host: target };
    const auth = proxyAuthorization(this.proxy);
    if (auth) headers['proxy-authorization'] = auth;
    const proxyName = redactUrl(this.proxy);
    const mod = this.proxy.protocol === 'https:' ? https : http;
    let done = false;
    const finish = (err: Error | null, socket?: Socket): void => {
      if (done) return;
      done = true;
      cb(err, socket as Duplex);
    };
    const req = mod.request({
      host: this.proxy.hostname.replace(/^\[|\]$/g, ''),
      port: Number(this.proxy.port) || (this.proxy.protocol === 'https:' ? 443 : 80),
      method: 'CONNECT',
      path: target,
      headers,
      agent: false,
      timeout: this.connectTimeoutMs,
    });
    req.once('connect', (res, socket, head) => {
      req.setTimeout(0);
      if (res.statusCode !== 200) {
        socket.destroy();
        const s = res.statusCode ?? 0;
        finish(
          new ProxyError(
            `proxy ${proxyName} answered ${s} ${res.statusMessage ?? ''} to CONNECT ${target}`.trim(),
            s >= 500 || s === 429,
            s === 407 ? 'the proxy wants credentials: put them in the proxy URL' : undefined,
          ),
        );
        return;
      }
      if (head.length) socket.unshift(head);
      const servername = (options as tls.ConnectionOptions).servername || (isIP(host) ? undefined : host);
      const tlsSocket = tls.connect({ ...(options as tls.ConnectionOptions), socket, servername });
      finish(null, tlsSocket);
    });
    req.once('timeout', () => {
      req.destroy();
      finish(new ProxyError(`proxy ${proxyName}: CONNECT ${target} timed out`, true));
    });
    req.once('error', (err) => finish(new ProxyError(`proxy ${proxyName}: ${oneLine(err.message)}`, true)));
    req.end();
    return undefined;
  }
}
