// Unit tests for how zod issues become the spec's 422 entries ({loc, msg, type}) with seed 003's type names.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { toValidationIssues } from '../../src/api/validation';

const schema = z.object({
  name: z.string().min(1).max(5),
  role: z.enum(['owner', 'reader']),
  limit: z.number().int().min(1).max(10),
  flag: z.boolean(),
  items: z.array(z.string()),
});

function issuesFor(input: unknown) {
  const result = schema.safeParse(input);
  assert.equal(result.success, false);
  return toValidationIssues('body', result.error!, input);
}

describe('toValidationIssues', () => {
  test('missing fields, enums included, are "missing" with FastAPI\'s message', () => {
    const issues = issuesFor({});
    assert.deepEqual(
      issues.map((i) => [i.loc.join('.'), i.type, i.msg]),
      [
        ['body.name', 'missing', 'Field required'],
        ['body.role', 'missing', 'Field required'],
        ['body.limit', 'missing', 'Field required'],
        ['body.flag', 'missing', 'Field required'],
        ['body.items', 'missing', 'Field required'],
      ],
    );
  });
  test('wrong types, bounds and enum values get the seed\'s type names', () => {
    const issues = issuesFor({ name: 7, role: 'boss', limit: 11, flag: 'yes', items: [1] });
    const byField = Object.fromEntries(issues.map((i) => [i.loc.slice(1).join('.'), i]));
    assert.equal(byField.name!.type, 'string_type');
    assert.equal(byField.name!.msg, 'Input should be a valid string');
    assert.equal(byField.role!.type, 'enum');
    assert.equal(byField.role!.msg, "Input should be 'owner' or 'reader'");
    assert.equal(byField.limit!.type, 'less_than_equal');
    assert.equal(byField.limit!.msg, 'Input should be less than or equal to 10');
    assert.equal(byField.flag!.type, 'bool_type');
    assert.deepEqual(byField['items.0']!.loc, ['body', 'items', 0]);
  });
  test('string lengths and lower bounds', () => {
    const issues = issuesFor({ name: '', role: 'owner', limit: 0, flag: true, items: [] });
    assert.deepEqual(issues.map((i) => i.type), ['string_too_short', 'greater_than_equal']);
    const long = issuesFor({ name: 'toolong', role: 'owner', limit: 1, flag: true, items: [] });
    assert.deepEqual(long.map((i) => i.type), ['string_too_long']);
  });
});
