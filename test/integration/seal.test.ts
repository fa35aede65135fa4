/** The streaming send → compress → hash pass loses no byte, at every compression. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { decompressor } from '../../src/image/compression.js';
import { COMPRESSIONS } from '../../src/image/compression.js';
import { sendCompressed } from '../../src/image/streams.js';
import { world, type World } from '../helpers/world.js';

describe('seal: zfs send | compress | hash', function () {
  this.timeout(5 * 60 * 1000);
  let w: World;
  let reference: string;
  let snapshot: string;
  before(async () => {
    w = await world();
    snapshot = `${w.datasetRoot}/${w.base.uuid}@final`;
    if (!(await w.zfs.exists(snapshot))) {
      const r = await execa('sh', ['-c', 'gzip -dc "$1" | zfs receive -u "$2"', 'sh', join(w.sampleDir, 'minimal-64-lts-sample-24.4.1.zfs.gz'), `${w.datasetRoot}/${w.base.uuid}`]);
      assert.equal(r.exitCode, 0);
    }
    const direct = await execa('zfs', ['send', snapshot], { encoding: 'buffer' });
    reference = createHash('sha1').update(direct.stdout).digest('hex');
  });

  for (const compression of COMPRESSIONS) {
    it(`${compression}: every run yields the whole stream, and files[0] describes the file`, async () => {
      const path = join(w.dir, `seal-${compression}`);
      for (let i = 0; i < 5; i++) {
        const file = await sendCompressed(w.zfs, snapshot, undefined, compression, path);
        const bytes = await readFile(path);
        assert.equal(file.size, bytes.length);
        assert.equal(file.sha1, createHash('sha1').update(bytes).digest('hex'));
        const tool = decompressor(compression);
        const raw = tool ? (await execa(tool.cmd, tool.args, { input: bytes, encoding: 'buffer' })).stdout : bytes;
        assert.equal(createHash('sha1').update(raw).digest('hex'), reference, `run ${i}: decompressed stream equals zfs send's`);
      }
      await rm(path, { force: true });
    });
  }
});
