/**
 * `node build/scripts/bench-upload.js [--mb 512] [--runs 3]`: the publish
 * upload path (MantaClient.putFile) against `curl -T` of the same file to
 * the same local Manta test server (test/servers/manta-server.ts), both
 * signed the same way, interleaved. Prints a markdown table row.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { parsePrivateKey } from '../src/http/keys.js';
import { keyObjectSigner, mantaKeyId, signDateHeader } from '../src/http/signature.js';
import { MantaClient } from '../src/manta/client.js';
import { MantaTestServer } from '../test/servers/manta-server.js';
import { nodeRsaKey } from '../test/servers/ssh-keys.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

async function md5File(path: string): Promise<string> {
  const h = createHash('md5');
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest('base64');
}

async function main(): Promise<void> {
  const mb = arg('--mb', 512);
  const runs = arg('--runs', 3);
  const dir = await mkdtemp(join(tmpdir(), 'bi-upload-'));
  const key = nodeRsaKey();
  const srv = await MantaTestServer.start({ acct: { keys: [key.pubLine] } });
  const p = parsePrivateKey(key.pem);
  if (p.locked) throw new Error('locked key');
  const signer = keyObjectSigner(p.key, 'bench key');
  const client = new MantaClient({ url: srv.url, user: 'acct', signer });
  try {
    const file = join(dir, 'image.zfs.gz');
    // Incompressible, as an image file is.
    const chunk = randomBytes(1 << 20);
    await writeFile(file, Buffer.concat(Array.from({ length: mb }, () => chunk)));
    const size = mb << 20;
    const md5 = await md5File(file);
    await client.mkdir('/acct/stor/bench');
    const ours: number[] = [];
    const curl: number[] = [];
    for (let i = 0; i < runs; i++) {
      for (const who of i % 2 ? ['curl', 'ours'] : ['ours', 'curl']) {
        const path = `/acct/stor/bench/${who}-${i}`;
        const t0 = performance.now();
        if (who === 'ours') {
          await client.putFile(path, file, { size, md5, contentType: 'application/octet-stream' });
          ours.push((performance.now() - t0) / 1000);
        } else {
          const h = await signDateHeader(signer, mantaKeyId('acct', undefined, signer.fingerprint));
          const r = await execa('curl', ['-sS', '-f', '-T', file, '-H', `date: ${h.date}`, '-H', `authorization: ${h.authorization}`,
            '-H', 'content-type: application/octet-stream', '-H', `content-md5: ${md5}`, '-H', 'accept: application/json', `${srv.url}/acct/stor/bench/${who}-${i}`]);
          if (r.exitCode !== 0) throw new Error(`curl failed: ${r.stderr}`);
          curl.push((performance.now() - t0) / 1000);
        }
        const e = srv.entry(path);
        if (e?.type !== 'object' || e.size !== size || e.md5 !== md5) throw new Error(`${who}: ${path} not stored whole`);
        await rm(e.file, { force: true }); // keep the test server's temp dir small
      }
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
    const rate = (t: number) => (size / 1e6 / t).toFixed(0);
    const ratios = ours.map((t, i) => curl[i] / t).sort((a, b) => a - b);
    console.log('| file | runs | MantaClient.putFile MB/s | curl -T MB/s | ours / curl (min / median / max) |');
    console.log('|---|---|---|---|---|');
    console.log(`| ${mb} MiB | ${runs} | ${rate(med(ours))} | ${rate(med(curl))} | ${ratios[0].toFixed(2)} / **${ratios[ratios.length >> 1].toFixed(2)}** / ${ratios[ratios.length - 1].toFixed(2)} |`);
  } finally {
    client.close();
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`bench-upload: ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
});
