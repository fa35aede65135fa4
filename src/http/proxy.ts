/**
 * HTTP(S) proxies from http_proxy/https_proxy/all_proxy/no_proxy as curl
 * reads them (got and node's http have none built in), and the one place
 * that chooses how a request to a URL goes out (`routeFor`): straight, or
 * through the proxy the environment names for it (a CONNECT tunnel for
 * https, absolute-form requests for http). Every client (Manta, IMGAPI,
 * the base-image source) gets its agent here. A proxy's credentials go
 * only into Proxy-Authorization, never into a message.
 */
import http from 'node:http';
import https from 'node:https';
import net, { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { UsageError, oneLine } from '../core/errors.js';

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

/** The variable that names the proxy for `target` and its text: `<scheme>_proxy`, `<SCHEME>_PROXY`, `all_proxy`, `ALL_PROXY`. */
function proxySetting(target: URL, env: NodeJS.ProcessEnv): { variable: string; raw: string } | undefined {
  const scheme = target.protocol.replace(/:$/, '');
  for (const variable of [`${scheme}_proxy`, `${scheme.toUpperCase()}_PROXY`, 'all_proxy', 'ALL_PROXY']) {
    const raw = env[variable];
    if (raw) return { variable, raw };
  }
  return undefined;
}

/**
 * The proxy for `target` from the environment, or undefined: `<scheme>_proxy`
 * (lower case first, then upper case), then `all_proxy`; `no_proxy` excludes.
 * The environment is input: a value that is no http(s) proxy URL is a
 * UsageError naming the variable and never echoing the value (it may hold
 * a password).
 */
export function proxyFor(target: URL, env: NodeJS.ProcessEnv = process.env): URL | undefined {
  const setting = proxySetting(target, env);
  if (!setting) return undefined;
  if (noProxyMatches(target, env.no_proxy || env.NO_PROXY || '')) return undefined;
  const { variable, raw } = setting;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(raw.trim())?.[1]?.toLowerCase();
  if (scheme && scheme !== 'http' && scheme !== 'https') {
    throw new UsageError(`${variable}: a ${scheme}:// proxy is not supported, only http:// and https://`);
  }
  let proxy: URL | undefined;
  try {
    // curl accepts "host:port" too.
    proxy = new URL(scheme ? raw.trim() : `http://${raw.trim()}`);
  } catch {
    proxy = undefined;
  }
  // The URL parser drops tabs and newlines silently: a value holding any control character is refused instead.
  if (!proxy || !proxy.hostname || hasControlOrSpace(raw.trim())) {
    throw new UsageError(`${variable} is not a proxy URL`, 'e.g. http://user:password@proxy.example.com:3128');
  }
  try {
    // Proxy-Authorization carries them decoded: a bad %-sequence would otherwise throw mid-request.
    decodeURIComponent(proxy.username);
    decodeURIComponent(proxy.password);
  } catch {
    throw new UsageError(`${variable}: the user or password is not valid percent-encoding`, 'write a % in it as %25');
  }
  return proxy;
}

function hasControlOrSpace(text: string): boolean {
  return [...text].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f || /\s/.test(c));
}

/** A proxy as messages name it: scheme, host and port, never its credentials. */
export function proxyName(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
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
  constructor(
    private readonly proxy: URL,
    o: http.AgentOptions = {},
  ) {
    super({ keepAlive: false, ...o });
  }

  addRequest(req: http.ClientRequest, options: Record<string, unknown>): void {
    // Already absolute when the caller asked for it (`Route.path`): a request with `Expect` has its request line written before it gets here.
    if (!/^http:\/\//i.test(req.path)) {
      const host = req.getHeader('host') ?? `${String(options.host)}:${String(options.port)}`;
      req.path = `http://${String(host)}${req.path}`;
    }
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
    o: https.AgentOptions = {},
  ) {
    super({ keepAlive: false, ...o });
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
    const name = proxyName(this.proxy);
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
            `proxy ${name} answered ${s} ${res.statusMessage ?? ''} to CONNECT ${target}`.trim(),
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
      finish(new ProxyError(`proxy ${name}: CONNECT ${target} timed out`, true));
    });
    req.once('error', (err) => finish(new ProxyError(`proxy ${name}: ${oneLine(err.message)}`, true)));
    req.end();
    return undefined;
  }
}

export interface RouteOptions {
  /** Where http_proxy/https_proxy/no_proxy are read. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Connecting to the proxy and its CONNECT answer. Default 10 s. */
  connectTimeoutMs?: number;
  keepAlive?: boolean;
  maxSockets?: number;
  /** TLS to an https target, straight or inside the tunnel. */
  rejectUnauthorized?: boolean;
  ca?: string | Buffer | Array<string | Buffer>;
}

/** How requests to one server go out: the agent to give every request, and the proxy in between (for messages). */
export interface Route {
  agent: http.Agent;
  /** `http://proxy:3128` (no credentials) when a proxy carries the requests. */
  proxy?: string;
  /** The request target for node's `http.request` `path`: absolute-form through an http proxy, else path and query. */
  path(url: URL): string;
}

/**
 * The one choice of how requests to `target`'s server go out, given the
 * proxy environment: an https target through a proxy gets a CONNECT
 * tunnel (the TLS, and so what HTTP Signatures sign, is end to end), an
 * http target absolute-form requests to the proxy, anything else (or a
 * host in no_proxy) a direct agent.
 */
export function routeFor(target: URL, o: RouteOptions = {}): Route {
  const proxy = proxyFor(target, o.env ?? process.env);
  const secure = target.protocol === 'https:';
  const common = {
    keepAlive: o.keepAlive ?? true,
    ...(o.maxSockets ? { maxSockets: o.maxSockets } : {}),
  };
  const tlsOptions = {
    ...(o.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}),
    ...(o.ca ? { ca: o.ca } : {}),
  };
  const originForm = (url: URL): string => url.pathname + url.search;
  if (!proxy) return { agent: secure ? new https.Agent({ ...common, ...tlsOptions }) : new http.Agent(common), path: originForm };
  if (secure) return { agent: new HttpsTunnelAgent(proxy, o.connectTimeoutMs ?? 10_000, { ...common, ...tlsOptions }), proxy: proxyName(proxy), path: originForm };
  return { agent: new HttpProxyAgent(proxy, common), proxy: proxyName(proxy), path: (url) => `http://${url.host}${originForm(url)}` };
}
