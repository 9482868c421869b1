// Names under one rule made by the database (NFC + lower): re-uploads of İstanbul.txt become versions, café
// typed two ways is one name, limit=1 paging over tricky names returns every child once and in order (the
// owner's listing and a public link's), and invisible/reordering characters are refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, createTestTenant, startTestStack, type ApiResponse, type TestStack } from '../helpers/stack';
import { newUser, randomData, uploadResumable, type TestUser } from '../helpers/files';
import { burst, statusCounts } from '../helpers/race';
import { assertError } from '../helpers/assertions';
import { mkdir, putFile, V1 } from './tree-helpers';

const trickyNames = [
  'İstanbul', 'istanbul-2', 'ISTANBUL-3', 'ı', 'I', 'ΑΡΧΕΙΟΣ', 'αρχειος-2', 'Σίσυφος', 'σίσυφοσ-2', 'ς', 'Straße', 'STRASSE', 'strasse-2',
  'ß', 'ẞ-capital', 'café', 'Ärger', 'a\u0308rger-2', 'Ω', 'Ωmega', 'Å', 'ǅ', 'ﬁle', 'FILE', '😀', '😀😀', '👍🏽 thumbs', 'Zebra', 'apple',
  'Apple-2', '日本語', '한국어', 'x', 'X-2', '0', '10', '9', '~tilde', '_under', ' lead'.trim(), 'Éclair', 'éclair-2', 'ǲ', 'Ǳ-3',
];

async function pageAll(get: (cursor: string | null) => Promise<ApiResponse>): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 500; pages++) {
    const res = await get(cursor);
    assert.equal(res.status, 200, res.text);
    ids.push(...res.body.items.map((item: { id: string }) => item.id));
    cursor = res.body.next_cursor;
    if (!cursor) return ids;
  }
  assert.fail('paging did not end within 500 pages');
}

describe('tree names', () => {
  let stack: TestStack;
  let tenantId: string;
  let alice: TestUser;

  before(async () => {
    stack = await startTestStack({ workers: true });
    tenantId = (await createTestTenant(stack)).id;
    alice = await newUser(stack, tenantId, 'alice');
  });
  after(async () => {
    await stack?.close();
  });

  test('limit=1 paging over tricky names returns each child exactly once, in the order of one big page (owner and public link)', async () => {
    const folder = await mkdir(stack, alice, alice.rootFolderId, 'tricky');
    let created = 0;
    for (const name of trickyNames) {
      const res = await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: alice.token, body: { parent_id: folder.id, name } });
      // Whatever the rule says, the lookup and the unique index agree: 201 or a clean NAME_CONFLICT, never 500.
      if (res.status === 201) created++;
      else assertError(res, 409, 'NAME_CONFLICT', name);
    }
    for (const name of ['İstanbul.txt', 'ΑΡΧΕΙΟΣ.md', 'ß.bin']) assert.equal((await putFile(stack, alice.token, folder.id, name, randomData(10))).status, 201);
    const big = await api(stack.baseUrl, 'GET', `${V1}/folders/${folder.id}/children?limit=1000`, { token: alice.token });
    assert.equal(big.status, 200, big.text);
    const expected = big.body.items.map((item: { id: string }) => item.id);
    assert.equal(expected.length, created + 3);
    const paged = await pageAll((cursor) => api(stack.baseUrl, 'GET', `${V1}/folders/${folder.id}/children?limit=1${cursor ? `&cursor=${cursor}` : ''}`, { token: alice.token }));
    assert.deepEqual(paged, expected);
    const paged7 = await pageAll((cursor) => api(stack.baseUrl, 'GET', `${V1}/folders/${folder.id}/children?limit=7${cursor ? `&cursor=${cursor}` : ''}`, { token: alice.token }));
    assert.deepEqual(paged7, expected);

    const link = await api(stack.baseUrl, 'POST', `${V1}/folders/${folder.id}/links`, { token: alice.token, body: {} });
    assert.equal(link.status, 201, link.text);
    const publicPaged = await pageAll((cursor) => api(stack.baseUrl, 'GET', `${V1}/public/links/${link.body.token}/children?limit=1${cursor ? `&cursor=${cursor}` : ''}`));
    assert.deepEqual(publicPaged, expected);
  });

  test('a second upload of İstanbul.txt (direct, other case, resumable) is a new version of the same file', async () => {
    const folder = await mkdir(stack, alice, alice.rootFolderId, 'turkish');
    const first = await putFile(stack, alice.token, folder.id, 'İstanbul.txt', randomData(100));
    assert.equal(first.status, 201, first.text);
    const second = await putFile(stack, alice.token, folder.id, 'İstanbul.txt', randomData(100));
    assert.equal(second.status, 200, second.text);
    assert.equal(second.body.file.id, first.body.file.id);
    assert.equal(second.body.version.number, 2);
    const upper = await putFile(stack, alice.token, folder.id, 'İSTANBUL.TXT', randomData(100));
    assert.equal(upper.status, 200, upper.text);
    assert.equal(upper.body.file.id, first.body.file.id);
    const resumable = await uploadResumable(stack, alice.token, folder.id, 'İstanbul.txt', randomData(1000));
    assert.equal(resumable.finalize.status, 200, resumable.finalize.text);
    assert.equal(resumable.finalize.body.file.id, first.body.file.id);
    assert.equal(resumable.finalize.body.version.number, 4);
    const live = await stack.services.db.selectFrom('nodes').select('id').where('parent_id', '=', folder.id).where('deleted_at', 'is', null).execute();
    assert.equal(live.length, 1);
  });

  test('café (precomposed) and cafe + U+0301 are one name, stored in NFC; a folder of either name conflicts', async () => {
    const folder = await mkdir(stack, alice, alice.rootFolderId, 'accents');
    const composed = await putFile(stack, alice.token, folder.id, 'caf\u00e9.txt', randomData(10));
    assert.equal(composed.status, 201, composed.text);
    const decomposed = await putFile(stack, alice.token, folder.id, 'cafe\u0301.txt', randomData(10));
    assert.equal(decomposed.status, 200, decomposed.text);
    assert.equal(decomposed.body.file.id, composed.body.file.id);
    const made = await mkdir(stack, alice, folder.id, 'Re\u0301sume\u0301');
    assert.equal(made.name, 'R\u00e9sum\u00e9');
    assertError(await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: alice.token, body: { parent_id: folder.id, name: 'r\u00e9sum\u00e9' } }), 409, 'NAME_CONFLICT');
    const other = await mkdir(stack, alice, folder.id, 'other');
    assertError(await api(stack.baseUrl, 'PATCH', `${V1}/folders/${other.id}`, { token: alice.token, body: { name: 'RE\u0301SUME\u0301' } }), 409, 'NAME_CONFLICT');
  });

  test('ß and SS are different names, SS and ss the same — as the unique index says, with no 500 under a race', async () => {
    const folder = await mkdir(stack, alice, alice.rootFolderId, 'eszett');
    await mkdir(stack, alice, folder.id, 'Straße');
    await mkdir(stack, alice, folder.id, 'STRASSE');
    assertError(await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: alice.token, body: { parent_id: folder.id, name: 'strasse' } }), 409, 'NAME_CONFLICT');
    assertError(await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: alice.token, body: { parent_id: folder.id, name: 'STRAßE' } }), 409, 'NAME_CONFLICT');
    // Case variants of one new name at once: one folder, the rest a clean NAME_CONFLICT.
    const variants = ['İzmir', 'İZMİR'];
    const responses = await burst(stack.baseUrl, 20, (index, dispatcher) =>
      api(stack.baseUrl, 'POST', `${V1}/folders`, { token: alice.token, body: { parent_id: folder.id, name: variants[index % 2 === 0 ? 0 : 1] }, dispatcher }),
    );
    assert.deepEqual(statusCounts(responses), { 201: 1, 409: 19 });
    for (const res of responses) if (res.status === 409) assertError(res, 409, 'NAME_CONFLICT');
  });

  test('invisible and reordering characters are refused: 422 in JSON bodies, 400 INVALID_NAME in paths, saying which class', async () => {
    const cases: [string, RegExp][] = [
      ['invoice\u202Efdp.exe', /bidirectional/],
      ['a\u2066b', /bidirectional/],
      ['zero\u200Bwidth', /zero-width/],
      ['bom\uFEFF', /zero-width/],
      ['c1\u0085x', /C1 control/],
    ];
    for (const [name, reason] of cases) {
      const body = await api(stack.baseUrl, 'POST', `${V1}/folders`, { token: alice.token, body: { parent_id: alice.rootFolderId, name } });
      assertError(body, 422, 'VALIDATION_ERROR', JSON.stringify(name));
      assert.match(JSON.stringify(body.body.detail), reason);
      const put = await putFile(stack, alice.token, alice.rootFolderId, name, randomData(5));
      assertError(put, 400, 'INVALID_NAME', JSON.stringify(name));
      assert.match(put.body.detail, reason);
    }
    const live = await stack.services.db.selectFrom('nodes').select('name').where('tenant_id', '=', tenantId).execute();
    assert.equal(live.filter((n) => /[\u202a-\u202e\u2066-\u2069\u200b-\u200d\u2060\ufeff\u0080-\u009f]/.test(n.name)).length, 0);
  });
});
