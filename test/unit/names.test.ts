// Unit tests for node-name rules (nameProblem, normalizedName): pure functions, no services needed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { conflictCopyName, nameProblem, normalizedName } from '../../src/services/names';

describe('nameProblem', () => {
  test('accepts ordinary, accented, non-Latin, emoji and combining-mark names', () => {
    for (const name of ['report.pdf', 'İstanbul.txt', 'ΑΡΧΕΙΟΣ', 'Straße', 'cafe\u0301', '😀 party.png', '日本語', 'a b', 'x'.repeat(255)]) {
      assert.equal(nameProblem(name), null, JSON.stringify(name));
    }
  });

  test('keeps the original rules: empty, ".", "..", slashes, C0 controls, outer whitespace, 255 bytes', () => {
    assert.match(nameProblem('')!, /empty/);
    assert.match(nameProblem('.')!, /"\."/);
    assert.match(nameProblem('..')!, /"\.\."/);
    assert.match(nameProblem('a/b')!, /"\/"/);
    assert.match(nameProblem('a\\b')!, /"\/"/);
    assert.match(nameProblem('a\u0000b')!, /control characters/);
    assert.match(nameProblem('a\nb')!, /control characters/);
    assert.match(nameProblem('a\u007fb')!, /control characters/);
    assert.match(nameProblem(' a')!, /whitespace/);
    assert.match(nameProblem('a ')!, /whitespace/);
    assert.match(nameProblem('x'.repeat(256))!, /255 bytes/);
    // 128 two-byte characters are 256 bytes.
    assert.match(nameProblem('é'.repeat(128))!, /255 bytes/);
  });

  test('refuses C1 control characters and says so', () => {
    for (const code of [0x80, 0x85, 0x9b, 0x9f]) assert.match(nameProblem(`a${String.fromCharCode(code)}b`)!, /C1 control/, code.toString(16));
    assert.equal(nameProblem('a\u00a0b'), null, 'U+00A0 (no-break space) is not a C1 control');
  });

  test('refuses bidirectional overrides and isolates and says so', () => {
    for (const code of [0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069]) {
      assert.match(nameProblem(`invoice${String.fromCharCode(code)}fdp.exe`)!, /bidirectional/, code.toString(16));
    }
    assert.equal(nameProblem('a\u2065b'), null, 'U+2065 is outside the refused ranges');
  });

  test('refuses zero-width characters and says so', () => {
    for (const code of [0x200b, 0x200c, 0x200d, 0x2060, 0xfeff]) assert.match(nameProblem(`a${String.fromCharCode(code)}b`)!, /zero-width/, code.toString(16));
    assert.equal(nameProblem('a\u200eb'), null, 'U+200E (LRM) is not in the zero-width class');
  });

  test('refuses unpaired surrogates, high or low, anywhere; accepts proper pairs', () => {
    for (const name of ['\ud800', 'a\ud83d', '\ude00x', 'x\ude00y', '\ude00\ud83d']) assert.match(nameProblem(name)!, /surrogate/, JSON.stringify(name));
    assert.equal(nameProblem('\ud83d\ude00'), null);
  });
});

describe('normalizedName', () => {
  test('stores names in NFC: precomposed and combining forms become one name', () => {
    assert.deepEqual(normalizedName('cafe\u0301'), { name: 'caf\u00e9', problem: null });
    assert.deepEqual(normalizedName('caf\u00e9'), { name: 'caf\u00e9', problem: null });
    assert.equal(normalizedName('A\u030a').name, '\u00c5');
  });

  test('checks the normalised form and reports the problem', () => {
    assert.match(normalizedName('a\u202eb')!.problem!, /bidirectional/);
    assert.match(normalizedName('\ud800')!.problem!, /surrogate/);
    assert.equal(normalizedName('İstanbul').name, 'İstanbul', 'normalising never case-maps');
  });
});

describe('conflictCopyName', () => {
  const day = new Date('2026-12-03T22:15:00Z');

  test('stem, device and day before the extension; a counter from the second copy of a day', () => {
    assert.equal(conflictCopyName('report.pdf', 'Laptop', day), 'report (conflict from Laptop 2026-12-03).pdf');
    assert.equal(conflictCopyName('report.pdf', 'Laptop', day, 2), 'report (conflict from Laptop 2026-12-03 2).pdf');
    assert.equal(conflictCopyName('Makefile', 'Laptop', day), 'Makefile (conflict from Laptop 2026-12-03)');
    assert.equal(conflictCopyName('.bashrc', 'Laptop', day), '.bashrc (conflict from Laptop 2026-12-03)');
    assert.equal(conflictCopyName('archive.tar.gz', 'Laptop', day), 'archive.tar (conflict from Laptop 2026-12-03).gz');
  });

  test('the device name is made name-safe and short; the result is always a valid name within 255 bytes', () => {
    assert.equal(conflictCopyName('a.txt', 'Work/Laptop\\2', day), 'a (conflict from Work_Laptop_2 2026-12-03).txt');
    assert.equal(conflictCopyName('a.txt', '  ', day), 'a (conflict from device 2026-12-03).txt');
    assert.equal(conflictCopyName('a.txt', 'x\u202ey\u0000z', day), 'a (conflict from x_y_z 2026-12-03).txt');
    const long = conflictCopyName(`${'é'.repeat(120)}.txt`, 'd'.repeat(200), day, 12);
    assert.ok(Buffer.byteLength(long) <= 255, `${Buffer.byteLength(long)} bytes`);
    assert.equal(nameProblem(long), null);
    assert.match(long, /^é+ \(conflict from d{40} 2026-12-03 12\)\.txt$/);
  });
});
