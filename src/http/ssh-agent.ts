/**
 * A minimal ssh-agent client (draft-miller-ssh-agent): list identities and
 * sign, over the Unix socket in SSH_AUTH_SOCK. One connection per request,
 * each bounded by a timeout, so a wedged agent cannot hang a publish.
 */
import { connect } from 'node:net';
import { SshReader, SshWriter } from './ssh-wire.js';

const SSH_AGENT_FAILURE = 5;
const SSH2_AGENTC_REQUEST_IDENTITIES = 11;
const SSH2_AGENT_IDENTITIES_ANSWER = 12;
const SSH2_AGENTC_SIGN_REQUEST = 13;
const SSH2_AGENT_SIGN_RESPONSE = 14;
/** Ask for rsa-sha2-256 rather than the sha1 `ssh-rsa` default. */
export const SSH_AGENT_RSA_SHA2_256 = 2;

export interface AgentIdentity {
  blob: Buffer;
  comment: string;
}

export class AgentError extends Error {}

export class SshAgent {
  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = 10_000,
  ) {}

  async identities(): Promise<AgentIdentity[]> {
    const reply = await this.request(new SshWriter().u8(SSH2_AGENTC_REQUEST_IDENTITIES).toBuffer());
    const r = new SshReader(reply);
    const type = r.u8();
    if (type !== SSH2_AGENT_IDENTITIES_ANSWER) throw new AgentError(`ssh-agent refused to list keys (reply ${type})`);
    const n = r.u32();
    const ids: AgentIdentity[] = [];
    for (let i = 0; i < n; i++) {
      const blob = r.string();
      const comment = r.text();
      // Certificates cannot be named by a plain key fingerprint; skip them as sshpk-agent does.
      if (!new SshReader(blob).text().includes('-cert-')) ids.push({ blob: Buffer.from(blob), comment });
    }
    return ids;
  }

  /** The agent's signature blob (`string format, string signature`). */
  async sign(blob: Buffer, data: Buffer, flags = 0): Promise<Buffer> {
    const msg = new SshWriter().u8(SSH2_AGENTC_SIGN_REQUEST).string(blob).string(data).u32(flags).toBuffer();
    const r = new SshReader(await this.request(msg));
    const type = r.u8();
    if (type === SSH_AGENT_FAILURE) throw new AgentError('ssh-agent refused to sign (key locked, removed, or confirmation denied)');
    if (type !== SSH2_AGENT_SIGN_RESPONSE) throw new AgentError(`unexpected ssh-agent reply ${type}`);
    return Buffer.from(r.string());
  }

  private request(body: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const sock = connect(this.socketPath);
      const chunks: Buffer[] = [];
      let got = 0;
      const done = (err: Error | undefined, value?: Buffer): void => {
        clearTimeout(timer);
        sock.destroy();
        if (err) reject(err);
        else resolve(value!);
      };
      const timer = setTimeout(() => done(new AgentError(`ssh-agent at ${this.socketPath} did not answer in ${this.timeoutMs} ms`)), this.timeoutMs);
      sock.on('error', (err) => done(new AgentError(`cannot talk to ssh-agent at ${this.socketPath}: ${err.message}`)));
      sock.on('connect', () => sock.write(new SshWriter().string(body).toBuffer()));
      sock.on('data', (c: Buffer) => {
        chunks.push(c);
        got += c.length;
        if (got < 4) return;
        const all = Buffer.concat(chunks);
        const len = all.readUInt32BE(0);
        if (len > 256 * 1024) return done(new AgentError('ssh-agent reply too large'));
        if (all.length >= 4 + len) done(undefined, all.subarray(4, 4 + len));
      });
      sock.on('end', () => done(new AgentError('ssh-agent closed the connection without a full reply')));
    });
  }
}
