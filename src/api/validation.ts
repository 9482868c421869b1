// Turns zod issues into the spec's 422 entries ({loc, msg, type}) with seed 003's type names.
import type { z } from 'zod';
import type { ValidationIssue } from '../errors';

type Issue = z.core.$ZodIssue;

function typeOf(issue: Issue, input: unknown): string {
  switch (issue.code) {
    case 'invalid_type':
      if (input === undefined) return 'missing';
      if (issue.expected === 'string') return 'string_type';
      if (issue.expected === 'number' || issue.expected === 'int' || issue.expected === 'bigint') return 'int_type';
      if (issue.expected === 'boolean') return 'bool_type';
      return 'value_error';
    case 'invalid_value':
      // zod 4 reports an absent enum/literal field as invalid_value; for clients it is simply missing.
      return input === undefined ? 'missing' : 'enum';
    case 'too_small':
      if (issue.origin === 'string') return 'string_too_short';
      if (issue.origin === 'number' || issue.origin === 'int' || issue.origin === 'bigint') return 'greater_than_equal';
      return 'value_error';
    case 'too_big':
      if (issue.origin === 'string') return 'string_too_long';
      if (issue.origin === 'number' || issue.origin === 'int' || issue.origin === 'bigint') return 'less_than_equal';
      return 'value_error';
    default:
      return 'value_error';
  }
}

function valueAt(root: unknown, path: PropertyKey[]): unknown {
  let value = root;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function messageOf(issue: Issue, type: string): string {
  if (type === 'missing') return 'Field required';
  if (type === 'string_type') return 'Input should be a valid string';
  if (type === 'int_type') return 'Input should be a valid integer';
  if (type === 'bool_type') return 'Input should be a valid boolean';
  if (issue.code === 'invalid_value') return `Input should be ${issue.values.map((v) => `'${String(v)}'`).join(', ').replace(/, ([^,]*)$/, ' or $1')}`;
  if (type === 'less_than_equal' && issue.code === 'too_big') return `Input should be less than or equal to ${String(issue.maximum)}`;
  if (type === 'greater_than_equal' && issue.code === 'too_small') return `Input should be greater than or equal to ${String(issue.minimum)}`;
  return issue.message;
}

export function toValidationIssues(location: 'body' | 'query' | 'path' | 'header', error: z.ZodError, input: unknown): ValidationIssue[] {
  return error.issues.map((issue) => {
    const type = typeOf(issue, valueAt(input, issue.path));
    return {
      loc: [location, ...issue.path.map((p) => (typeof p === 'number' ? p : String(p)))],
      msg: messageOf(issue, type),
      type,
    };
  });
}
