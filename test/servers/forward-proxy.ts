/**
 * A small forwarding HTTP proxy on 127.0.0.1, as squid or a corporate
 * proxy is to a Jenkins agent: `CONNECT host:port` opens a tunnel (the
 * TLS inside it is the client's and the server's own), an absolute-form
 * request (`GET http://host:port/path`) is sent on to the server in
 * origin form with its headers (hop-by-hop and Proxy-Authorization
 * dropped). With `credentials` it wants `Proxy-Authorization: Basic` and
 * answers 407 without it. Everything that passed is in `log`.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';

export interface ProxiedRequest {
  /** `CONNECT` or the request's method. */
  method: string;
  /** `host:port` for CONNECT, the absolute URL otherwise. */
  target: string;
  /** The Proxy-Authorization header as received (to check it was sent, and sent only here). */
  proxyAuthorization?: string;
  /** What the proxy answered itself (407, 502), or undefined when it passed the request on. */
  refused?: number;
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'upgrade'];

export class ForwardProxy {
  readonly log: ProxiedRequest[] = [];
  private readonly sockets = new Set<Socket>();
  private server!: http.Server;
  url = '';

  private constructor(private readonly credentials?: { user: string; password: string }) {}

  static async start(o: { credentials?: { user: string; password: string } } = {}): Promise<ForwardProxy> {
    const p = new ForwardProxy(o.credentials);
    p.server = http.createServer((req, res) => p.forward(req, res));
    // Node answers `Expect: 100-continue` itself unless told otherwise: pass it on to the server instead.
    p.server.on('checkContinue', (req, res) => p.forward(req, res));
    p.server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => p.tunnel(req, socket, head));
    p.server.on('connection', (s: Socket) => {
      p.sockets.add(s);
      s.on('close', () => p.sockets.delete(s));
    });
    await new Promise<void>((r) => p.server.listen(0, '127.0.0.1', r));
    p.url = `http://127.0.0.1:${(p.server.address() as AddressInfo).port}`;
    return p;
  }

  /** This proxy's URL with its credentials in it (as a user puts them in https_proxy). */
  get urlWithCredentials(): string {
    const c = this.credentials;
    return c ? this.url.replace('//', `//${encodeURIComponent(c.user)}:${encodeURIComponent(c.password)}@`) : this.url;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private authorized(req: IncomingMessage, entry: ProxiedRequest): boolean {
    const got = req.headers['proxy-authorization'];
    if (got) entry.proxyAuthorization = got;
    if (!this.credentials) return true;
    const want = `Basic ${Buffer.from(`${this.credentials.user}:${this.credentials.password}`).toString('base64')}`;
    return got === want;
  }

  private tunnel(req: IncomingMessage, client: Socket, head: Buffer): void {
    const entry: ProxiedRequest = { method: 'CONNECT', target: req.url ?? '' };
    this.log.push(entry);
    const refuse = (status: number, text: string): void => {
      entry.refused = status;
      client.end(`HTTP/1.1 ${status} ${text}\r\n${status === 407 ? 'Proxy-Authenticate: Basic realm="test"\r\n' : ''}Content-Length: 0\r\n\r\n`);
    };
    if (!this.authorized(req, entry)) return refuse(407, 'Proxy Authentication Required');
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(entry.target);
    if (!m) return refuse(400, 'Bad Request');
    const upstream = net.connect(Number(m[2]), m[1], () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    this.sockets.add(upstream);
    upstream.on('close', () => this.sockets.delete(upstream));
    upstream.on('error', () => (client.writable && !entry.refused ? refuse(502, 'Bad Gateway') : client.destroy()));
    client.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    const entry: ProxiedRequest = { method: req.method ?? 'GET', target: req.url ?? '' };
    this.log.push(entry);
    const refuse = (status: number): void => {
      entry.refused = status;
      res.writeHead(status, status === 407 ? { 'proxy-authenticate': 'Basic realm="test"', connection: 'close' } : { connection: 'close' }).end();
      if (!req.complete) res.on('finish', () => req.socket.destroy());
    };
    if (!this.authorized(req, entry)) return refuse(407);
    let target: URL;
    try {
      target = new URL(entry.target);
    } catch {
      return refuse(400); // origin form: not a proxy request
    }
    if (target.protocol !== 'http:') return refuse(400);
    const headers = { ...req.headers };
    for (const h of HOP_BY_HOP) delete headers[h];
    const up = http.request(
      { host: target.hostname, port: target.port || 80, method: req.method, path: target.pathname + target.search, headers, agent: false },
      (ures) => {
        res.writeHead(ures.statusCode ?? 502, ures.statusMessage, ures.headers);
        ures.pipe(res);
      },
    );
    // Pass the server's `100 Continue` back to the client.
    up.on('continue', () => res.writeContinue());
    up.on('error', () => (res.headersSent ? res.destroy() : refuse(502)));
    req.pipe(up);
  }
}
