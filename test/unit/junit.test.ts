/**
 * JUnit XML (core/junit): what Jenkins' `junit` step reads, from untrusted
 * text (advisories, package names, server answers), always well-formed;
 * the pkg audit and doctor reports made with it. Read back with the strict
 * reader in test/helpers/xml.ts.
 */
import assert from 'node:assert/strict';
import { junitXml, xmlAttr, xmlText } from '../../src/core/junit.js';
import { auditJunit, parseAudit } from '../../src/pkgsrc/tools.js';
import { doctorJunit, type DoctorResult } from '../../src/setup/doctor.js';
import { findAll, parseXml } from '../helpers/xml.js';

const HOSTILE = 'a<b>&c]]>"q\'\x00\x01\x08\x0b\x0c\x1b[31m\x7f\ud800x\ufffe\uffff\t\r\nend 🙂';
/** What a parser reads back: characters XML cannot carry appear as \uXXXX, everything else as given. */
const READ_BACK = 'a<b>&c]]>"q\'\\u0000\\u0001\\u0008\\u000b\\u000c\\u001b[31m\x7f\\ud800x\\ufffe\\uffff\t\r\nend 🙂';

describe('JUnit XML (core/junit)', () => {
  it('the strict reader refuses what is not well-formed (so the checks below mean something)', () => {
    for (const bad of ['<a>&</a>', '<a>]]></a>', '<a>\x01</a>', '<a></b>', '<a x="1" x="2"/>', '<a x="<"/>', '<a>&#0;</a>', '<a/><b/>', '<a>&nope;</a>', '<a>\ud800</a>']) {
      assert.throws(() => parseXml(bad), /XML: /, bad);
    }
    assert.equal(parseXml('<a x="&#10;y">1 &lt; 2</a>').attrs.x, '\ny');
  });

  it('escapes hostile text and attributes: the document parses and reads back what went in', () => {
    const doc = junitXml({
      name: HOSTILE,
      cases: [
        { classname: HOSTILE, name: HOSTILE, failure: { message: HOSTILE, type: HOSTILE, text: HOSTILE } },
        { classname: 'c', name: 'skipped', skipped: HOSTILE },
        { classname: 'c', name: 'passed', output: HOSTILE },
      ],
    });
    assert.ok(!doc.includes(']]>'), ']]> never appears raw');
    const root = parseXml(doc);
    assert.equal(root.name, 'testsuites');
    const [suite] = findAll(root, 'testsuite');
    assert.deepEqual([suite.attrs.name, suite.attrs.tests, suite.attrs.failures, suite.attrs.skipped], [READ_BACK, '3', '1', '1']);
    const [failed, skipped, passed] = findAll(root, 'testcase');
    assert.equal(failed.attrs.name, READ_BACK);
    assert.equal(failed.attrs.classname, READ_BACK);
    const failure = findAll(failed, 'failure')[0];
    assert.equal(failure.attrs.message, READ_BACK);
    assert.equal(failure.attrs.type, READ_BACK);
    assert.equal(failure.text, READ_BACK);
    assert.equal(findAll(skipped, 'skipped')[0].attrs.message, READ_BACK);
    assert.equal(findAll(passed, 'failure').length, 0);
    assert.equal(findAll(passed, 'system-out')[0].text, READ_BACK);
    assert.equal(xmlText(']]>'), ']]&gt;');
    assert.equal(xmlAttr('"\n'), '&quot;&#10;');
  });

  it('the pkg audit: one failing case per vulnerable package with its advisories; none vulnerable is one passing case', () => {
    const out = [
      'Package webfetch-7.64.0 has a remote-code-execution vulnerability, see https://nvd.nist.gov/vuln/detail/CVE-2019-5482',
      'Package <evil>&-1.0 has a ]]><x/> vulnerability, see https://example.com/?a=1&b=<2>\x1b[0m',
      'Package webfetch-7.64.0 has a denial-of-service vulnerability, see https://nvd.nist.gov/vuln/detail/CVE-2019-5481',
      'Package oldthing-1.0 has reached end-of-life (eol), see https://www.NetBSD.org/eol-packages',
      '',
    ].join('\n');
    assert.deepEqual(parseAudit(out).map((f) => [f.pkg, f.advisories.length]), [['webfetch-7.64.0', 2], ['<evil>&-1.0', 1], ['oldthing-1.0', 1]]);
    const root = parseXml(auditJunit(out, 'svc-1.0'));
    const cases = findAll(root, 'testcase');
    assert.deepEqual(cases.map((c) => c.attrs.name), ['webfetch-7.64.0', '<evil>&-1.0', 'oldthing-1.0']);
    assert.ok(cases.every((c) => c.attrs.classname === 'pkgaudit.svc-1.0' && findAll(c, 'failure').length === 1));
    assert.match(findAll(cases[0], 'failure')[0].text, /remote-code-execution.*\n.*denial-of-service/);
    assert.equal(findAll(cases[1], 'failure')[0].text, 'Package <evil>&-1.0 has a ]]><x/> vulnerability, see https://example.com/?a=1&b=<2>\\u001b[0m');
    assert.equal(findAll(root, 'testsuite')[0].attrs.failures, '3');

    const clean = parseXml(auditJunit('', 'svc-1.0'));
    const [only] = findAll(clean, 'testcase');
    assert.equal(findAll(clean, 'testcase').length, 1);
    assert.equal(findAll(only, 'failure').length + findAll(only, 'skipped').length, 0);
    assert.equal(findAll(clean, 'testsuite')[0].attrs.failures, '0');
  });

  it('doctor: a case per check; fail is a failure with its fix, skip is skipped, warn passes with its note', () => {
    const r: DoctorResult = {
      ok: false,
      failed: 1,
      warnings: 1,
      checks: [
        { id: 'zfs', status: 'ok', detail: 'zfs works' },
        { id: 'dataset-root', status: 'fail', detail: 'tank/x does not exist', fix: 'zfs create -p tank/x' },
        { id: 'compressors', status: 'warn', detail: 'no pigz', fix: 'install pigz' },
        { id: 'manta', status: 'skip', detail: 'Manta not checked (pass --publish)' },
      ],
    };
    const root = parseXml(doctorJunit(r));
    const cases = findAll(root, 'testcase');
    assert.deepEqual(cases.map((c) => c.attrs.name), ['zfs', 'dataset-root', 'compressors', 'manta']);
    assert.equal(findAll(cases[1], 'failure')[0].attrs.message, 'tank/x does not exist');
    assert.equal(findAll(cases[1], 'failure')[0].text, 'tank/x does not exist\nfix: zfs create -p tank/x');
    assert.equal(findAll(cases[2], 'failure').length, 0);
    assert.match(findAll(cases[2], 'system-out')[0].text, /^warning: no pigz\nfix: install pigz$/);
    assert.equal(findAll(cases[3], 'skipped')[0].attrs.message, 'Manta not checked (pass --publish)');
    const suite = findAll(root, 'testsuite')[0];
    assert.deepEqual([suite.attrs.tests, suite.attrs.failures, suite.attrs.skipped], ['4', '1', '1']);
  });
});
