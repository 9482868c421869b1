// Reads the served OpenAPI document into a list of operations and builds, per operation, a fast-check
// arbitrary of hostile requests (path, query, headers, body, caller) whose ids are symbolic references to
// real resources, resolved only when the request is sent so generation stays pure and seed-reproducible.
import fc from 'fast-check';
import {
  RawJsonNumber,
  encodeComponent,
  forgedCursor,
  hostileHeaderValue,
  hostileNumber,
  hostileString,
  rangeHeader,
  rawPathSegment,
  wrongTypeValue,
} from './hostile-values';

type Schema = Record<string, any>;

export interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  schema: Schema;
}

export interface Operation {
  method: string;
  /** The OpenAPI path template, e.g. `/api/v1/files/{id}`. */
  template: string;
  isPublic: boolean;
  parameters: Parameter[];
  jsonBody?: Schema;
  rawBodyType?: string;
}

/** Fetches `/api/openapi.json` and lists every operation with its `$ref`s resolved. */
export async function loadOperations(baseUrl: string): Promise<Operation[]> {
  const response = await fetch(`${baseUrl}/api/openapi.json`);
  if (response.status !== 200) throw new Error(`GET /api/openapi.json: ${response.status}`);
  const document = (await response.json()) as Schema;
  const resolve = (schema: Schema | undefined, depth = 0): Schema | undefined => {
    if (!schema || depth > 20) return schema;
    if (typeof schema.$ref === 'string') {
      const target = schema.$ref.replace(/^#\//, '').split('/').reduce((node: any, key: string) => node?.[key], document);
      return resolve(target, depth + 1);
    }
    return schema;
  };
  const operations: Operation[] = [];
  for (const [template, item] of Object.entries<Schema>(document.paths ?? {})) {
    for (const [method, op] of Object.entries<Schema>(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const content = op.requestBody?.content ?? {};
      operations.push({
        method: method.toUpperCase(),
        template,
        isPublic: !op.security || op.security.length === 0,
        parameters: (op.parameters ?? []).map((p: Schema) => resolve(p)!).map((p: Schema) => ({ name: p.name, in: p.in, required: !!p.required, schema: resolve(p.schema) ?? {} })),
        jsonBody: content['application/json'] ? resolve(content['application/json'].schema, 0) : undefined,
        rawBodyType: Object.keys(content).find((type) => type !== 'application/json'),
      });
    }
  }
  return operations;
}

/** A real resource of a kind, chosen by `index` among the current fixtures when the request is sent. */
export class Ref {
  constructor(
    readonly kind: ResourceKind,
    readonly index: number,
  ) {}
}

export type ResourceKind =
  | 'user'
  | 'subject'
  | 'folder'
  | 'file'
  | 'share'
  | 'group'
  | 'grant'
  | 'link'
  | 'linkToken'
  | 'upload'
  | 'version'
  | 'apiKey'
  | 'invitation'
  | 'download'
  | 'space'
  | 'tenant'
  | 'trashed';

/** Which real resources fit a path parameter, judged by the path segment in front of it. */
function kindsForPathParam(template: string, name: string): ResourceKind[] {
  const segments = template.split('/');
  const at = segments.indexOf(`{${name}}`);
  const before = segments[at - 1] ?? '';
  const byOwner: Record<string, ResourceKind[]> = {
    users: ['user'],
    groups: ['group'],
    'api-keys': ['apiKey'],
    // The fitting kind is listed more than once, so it is picked most often; the others probe type confusion.
    files: ['file', 'file', 'file', 'folder', 'trashed'],
    folders: ['folder', 'folder', 'folder', 'file'],
    shares: ['share'],
    members: name === 'user_id' ? ['user'] : ['grant', 'user'],
    versions: ['version'],
    uploads: ['upload'],
    trash: ['trashed', 'file'],
    links: template.includes('/public/') ? ['linkToken'] : ['link'],
    invitations: ['invitation'],
    downloads: ['download'],
    chunks: [],
  };
  if (before in byOwner) return byOwner[before]!;
  // /admin/quotas/{level}/{id}: any id of any level.
  return ['user', 'group', 'share', 'tenant'];
}

/** Which real resources fit a query or body field, judged by its name. */
function kindsForField(name: string): ResourceKind[] {
  const byName: Record<string, ResourceKind[]> = {
    parent_id: ['folder', 'file'],
    folder_id: ['folder', 'file'],
    file_id: ['file', 'folder'],
    user_id: ['user'],
    actor_id: ['user'],
    principal_id: ['user', 'group'],
    target_id: ['file', 'folder', 'share', 'user'],
    space_id: ['space', 'share'],
    base_version_id: ['version'],
    tenant_id: ['tenant'],
    subject: ['subject'],
  };
  return byName[name] ?? [];
}

const refOf = (kinds: ResourceKind[]) => fc.tuple(fc.constantFrom(...kinds), fc.nat({ max: 7 })).map(([kind, index]) => new Ref(kind, index));

/** A plausible value for a JSON schema (so the request reaches the handler): real ids for id fields. */
function valueFor(schema: Schema, name: string, depth: number): fc.Arbitrary<unknown> {
  const kinds = kindsForField(name);
  const plausible = plausibleFor(schema, name, depth);
  return kinds.length ? fc.oneof({ weight: 3, arbitrary: refOf(kinds) }, { weight: 1, arbitrary: plausible }) : plausible;
}

/** Any hostile value: a nasty string, a huge number, or a value of the wrong JSON type. */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof({ weight: 3, arbitrary: hostileString }, { weight: 2, arbitrary: hostileNumber }, { weight: 2, arbitrary: wrongTypeValue });

/** Every place inside a JSON value (object fields and array items) that a mutation can replace. */
function placesIn(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (value instanceof Ref || value === null || typeof value !== 'object') return path.length ? [path] : [];
  const children = Array.isArray(value) ? value.map((item, i) => [i, item] as const) : Object.entries(value);
  return [...(path.length ? [path] : []), ...children.flatMap(([key, item]) => placesIn(item, [...path, key]))];
}

function replaceAt(value: unknown, path: (string | number)[], replacement: unknown): unknown {
  if (!path.length) return replacement;
  const [head, ...rest] = path;
  if (Array.isArray(value)) return value.map((item, i) => (i === head ? replaceAt(item, rest, replacement) : item));
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value as object)) {
    Object.defineProperty(copy, key, { value: key === head ? replaceAt(item, rest, replacement) : item, enumerable: true, writable: true, configurable: true });
  }
  return copy;
}

/** A plausible body with exactly one field (or item) replaced by a hostile value: the handler sees one bad input at a time. */
function withOneMutation(plausible: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return plausible.chain((value) => {
    const places = placesIn(value);
    if (!places.length) return hostileValue;
    return fc.tuple(fc.constantFrom(...places), hostileValue).map(([place, replacement]) => replaceAt(value, place, replacement));
  });
}

function plausibleFor(schema: Schema, name: string, depth: number): fc.Arbitrary<unknown> {
  if (schema.enum) return fc.constantFrom(...schema.enum);
  if (schema.anyOf || schema.oneOf) return fc.oneof(...(schema.anyOf ?? schema.oneOf).map((s: Schema) => plausibleFor(s, name, depth)));
  const type = Array.isArray(schema.type) ? schema.type : [schema.type];
  const arbitraries = type.map((t: string | undefined): fc.Arbitrary<unknown> => {
    switch (t) {
      case 'null':
        return fc.constant(null);
      case 'boolean':
        return fc.boolean();
      case 'integer':
      case 'number': {
        const min = schema.minimum ?? -10;
        const max = schema.maximum ?? Math.max(min + 1000, 1000);
        return fc.oneof(fc.integer({ min: Math.max(min, -1e9), max: Math.min(max, 1e9) }), fc.constantFrom(min, max));
      }
      case 'array':
        return depth > 3 ? fc.constant([]) : fc.array(valueFor(schema.items ?? {}, name, depth + 1), { maxLength: 3 });
      case 'object':
        return depth > 3 ? fc.constant({}) : objectFor(schema, depth + 1);
      default:
        return plausibleString(schema, name);
    }
  });
  return arbitraries.length === 1 ? arbitraries[0]! : fc.oneof(...arbitraries);
}

function plausibleString(schema: Schema, name: string): fc.Arbitrary<string> {
  if (schema.format === 'date-time') return fc.constantFrom('2030-01-01T00:00:00Z', '2000-01-01T00:00:00.000Z', '2030-01-01T00:00:00+05:30', '9999-12-31T23:59:59Z', '2024-02-30T00:00:00Z');
  if (schema.format === 'email' || name === 'email') return fc.constantFrom('fuzz@example.test', 'a@b', 'UPPER@EXAMPLE.TEST', `${'a'.repeat(64)}@example.test`);
  if (schema.pattern?.includes('0-9a-fA-F]{64}')) return fc.constantFrom('0'.repeat(64), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'F'.repeat(64));
  if (name === 'allowed_ips') return fc.constantFrom('127.0.0.1/32', '10.0.0.0/8', '::1/128', '999.1.1.1/8', '1.2.3.4/99', 'fe80::/10');
  if (name === 'require_email') return fc.constantFrom('@example.test', 'x@example.test');
  const alphabet = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_ .'.split(''));
  const ordinary = fc.string({ unit: alphabet, minLength: 1, maxLength: 24 }).map((s) => `fz-${s}`);
  if (name !== 'name') return ordinary;
  // Names that satisfy the schema yet are tricky: bidi and zero-width characters, 255-byte boundaries,
  // case-insensitive duplicates of fixture names, reserved-looking names.
  const tricky = fc.constantFrom('\u202Egnp.exe', 'zero\u200Bwidth\uFEFF', '\u2066bidi\u2069.txt', 'Ünïcödé ☃ 🙂', 'é'.repeat(127), 'é'.repeat(128), 'a'.repeat(255), '🙂'.repeat(64), ' padded ', 'CON', '.hidden', 'FILE-G0.TXT', 'inside', 'fuzz-g0');
  return fc.oneof({ weight: 3, arbitrary: ordinary }, { weight: 2, arbitrary: tricky.filter((s) => s.length <= (schema.maxLength ?? 255)) });
}

function objectFor(schema: Schema, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const properties = Object.entries<Schema>(schema.properties ?? {});
  const required = new Set<string>(schema.required ?? []);
  const fields = properties.map(([key, propertySchema]) =>
    // Required fields are usually present, optional ones half the time; both are sometimes dropped.
    fc.option(valueFor(propertySchema, key, depth).map((value) => [key, value] as const), { freq: required.has(key) ? 15 : 2, nil: undefined }),
  );
  const extras = fc.oneof(
    { weight: 8, arbitrary: fc.constant([] as [string, unknown][]) },
    { weight: 1, arbitrary: fc.array(fc.tuple(fc.constantFrom('__proto__', 'constructor', 'id', 'tenant_id', 'owner_user_id', 'is_admin', 'x'), wrongTypeValue), { minLength: 1, maxLength: 2 }) },
  );
  return fc.tuple(fc.tuple(...fields), extras).map(([present, extra]) => {
    const object: Record<string, unknown> = {};
    for (const [key, value] of extra) Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
    for (const field of present) if (field) object[field[0]] = field[1];
    return object;
  });
}

/** JSON bodies that are not a JSON object of the right shape at all. */
const junkJsonText = fc.constantFrom(
  '',
  'null',
  '[]',
  '"just a string"',
  '42',
  '1e400',
  '{',
  '{"a":',
  '{"name": "x",}',
  "{'name': 'x'}",
  '\uFEFF{"name":"bom"}',
  '{"name":"x","name":1}',
  '{"name":"\\u0000"}',
  '{"name":"\\ud800"}',
  '{"\\u0000":1}',
  '{"__proto__":{"is_admin":true},"constructor":{"prototype":{"x":1}}}',
  '['.repeat(5000) + ']'.repeat(5000),
  '{"a":'.repeat(100) + '1' + '}'.repeat(100),
  `{"name":"${'a'.repeat(300_000)}"}`,
  'NaN',
  'undefined',
);
const invalidUtf8 = fc.constantFrom(Buffer.from([0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80]));

export type Caller = 'admin' | 'member' | 'apiKey' | 'none' | 'garbage' | 'algNone' | 'expired' | 'otherTenant' | 'nulSubject' | 'basic';

export interface GeneratedRequest {
  operation: Operation;
  caller: Caller;
  /** Path segments per parameter: a Ref, an already-encoded raw segment, or a string to encode. */
  path: Record<string, Ref | { raw: string } | string>;
  /** Query pairs in order; a repeated name makes an array on the server. Values may be Refs or raw text. */
  query: [string, Ref | { raw: string } | string][];
  headers: [string, string | Ref][];
  body?: { json: unknown; contentType?: string } | { text: string | Buffer; contentType?: string };
  /** For the signed webhook: sign the body correctly, with a stale timestamp, or not at all. */
  webhookSignature?: 'valid' | 'stale' | 'wrong' | 'none';
}

const callerArbitrary = (operation: Operation): fc.Arbitrary<Caller> =>
  operation.isPublic
    ? fc.oneof({ weight: 8, arbitrary: fc.constant<Caller>('none') }, { weight: 2, arbitrary: fc.constantFrom<Caller>('admin', 'member', 'garbage') })
    : fc.oneof(
        { weight: 9, arbitrary: fc.constant<Caller>('admin') },
        { weight: 5, arbitrary: fc.constant<Caller>('member') },
        { weight: 2, arbitrary: fc.constant<Caller>('apiKey') },
        { weight: 1, arbitrary: fc.constant<Caller>('none') },
        { weight: 1, arbitrary: fc.constantFrom<Caller>('garbage', 'algNone', 'expired', 'otherTenant', 'nulSubject', 'basic') },
      );

type Part = Ref | { raw: string } | string;
const raw = (segment: string): Part => ({ raw: segment });

/** A value for a path parameter that routes to a real resource (or a valid enum/index). */
function plausiblePathValue(operation: Operation, parameter: Parameter): fc.Arbitrary<Part> {
  if (parameter.name === 'index') return fc.constantFrom('0', '1');
  if (parameter.schema.enum) return fc.constantFrom(...(parameter.schema.enum as string[]));
  const kinds = kindsForPathParam(operation.template, parameter.name);
  return kinds.length ? refOf(kinds) : plausibleString(parameter.schema, parameter.name);
}

const hostilePathValue: fc.Arbitrary<Part> = fc.oneof(
  { weight: 3, arbitrary: rawPathSegment.map(raw) },
  { weight: 2, arbitrary: hostileString.filter((s) => s.length > 0) },
  { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 80 }).filter((s) => s !== '.' && s !== '..') },
  { weight: 1, arbitrary: fc.constantFrom('999999999', '0000000000', '-1', '1e3', '4294967296', '2147483648') },
);

function plausibleQueryValue(parameter: Parameter): fc.Arbitrary<Part> | undefined {
  if (parameter.name === 'cursor') return undefined; // a cursor is either one this list handed out, or forged
  if (parameter.schema.enum) return fc.constantFrom(...(parameter.schema.enum as string[]));
  if (parameter.schema.type === 'integer') return fc.constantFrom('1', '2', '50', '1000');
  if (parameter.schema.format === 'date-time') return fc.constantFrom('2000-01-01T00:00:00Z', '2100-01-01T00:00:00.000+02:00');
  const kinds = kindsForField(parameter.name);
  return kinds.length ? refOf(kinds) : plausibleString(parameter.schema, parameter.name);
}

function hostileQueryValue(parameter: Parameter): fc.Arbitrary<Part> {
  const specific =
    parameter.name === 'cursor'
      ? forgedCursor
      : parameter.schema.type === 'integer'
        ? fc.constantFrom('0', '1001', '-1', '1e400', '18446744073709551616', '1.5', 'abc', '', '0x10', ' 5', 'NaN', 'Infinity')
        : parameter.schema.format === 'date-time'
          ? fc.constantFrom('2024-02-30T00:00:00Z', '99999-01-01T00:00:00Z', 'yesterday', '0', '1e400', '2024-01-01T00:00:00')
          : hostileString;
  return fc.oneof({ weight: 3, arbitrary: specific as fc.Arbitrary<Part> }, { weight: 1, arbitrary: hostileString }, { weight: 1, arbitrary: rawPathSegment.map(raw) });
}

type Pairs = [string, Part][];

/** Declared query parameters, each absent or plausible. */
function plausibleQuery(operation: Operation): fc.Arbitrary<Pairs> {
  const perParameter = operation.parameters
    .filter((p) => p.in === 'query')
    .map((parameter) => {
      const value = plausibleQueryValue(parameter);
      return value ? fc.option(value.map((v) => [parameter.name, v] as [string, Part]), { freq: 2, nil: undefined }) : fc.constant(undefined);
    });
  return fc.tuple(...perParameter).map((pairs) => pairs.filter((pair): pair is [string, Part] => pair !== undefined));
}

/** The plausible query with one thing wrong: a hostile value, a repeated name (an array on the server) or a junk name. */
function hostileQuery(operation: Operation): fc.Arbitrary<Pairs> {
  const declared = operation.parameters.filter((p) => p.in === 'query');
  const junkName = fc.tuple(fc.constantFrom('cursor', 'limit', 'x', '__proto__', 'constructor', 'a[b]', 'tenant_id', '%00', ''), fc.oneof(hostileString, rawPathSegment.map(raw)));
  const mutations: fc.Arbitrary<(pairs: Pairs) => Pairs>[] = [junkName.map((pair) => (pairs: Pairs) => [...pairs, pair as [string, Part]])];
  for (const parameter of declared) {
    mutations.push(
      hostileQueryValue(parameter).map((value) => (pairs: Pairs) => [...pairs.filter(([name]) => name !== parameter.name), [parameter.name, value]]),
      fc.tuple(plausibleQueryValue(parameter) ?? forgedCursor, plausibleQueryValue(parameter) ?? forgedCursor).map(([a, b]) => (pairs: Pairs) => [...pairs.filter(([name]) => name !== parameter.name), [parameter.name, a], [parameter.name, b]]),
    );
  }
  return fc.tuple(plausibleQuery(operation), fc.oneof(...mutations)).map(([pairs, mutate]) => mutate(pairs));
}

function hostileHeaders(operation: Operation): fc.Arbitrary<[string, string | Ref][]> {
  const candidates: fc.Arbitrary<[string, string | Ref]>[] = [
    fc.tuple(fc.constant('x-request-id'), hostileHeaderValue),
    fc.tuple(fc.constant('x-act-as-user'), fc.oneof(refOf(['user']), hostileHeaderValue)),
    fc.tuple(fc.constant('x-forwarded-for'), fc.constantFrom('1.2.3.4', 'garbage', '::1, 10.0.0.1', '999.999.999.999')),
    fc.tuple(fc.constant('accept'), fc.constantFrom('application/json', 'text/html', '*/*', 'garbage/;;;')),
    fc.tuple(fc.constant('content-type'), fc.constantFrom('application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', '')),
  ];
  if (operation.template.includes('/content') || operation.template.includes('/downloads/')) {
    candidates.push(fc.tuple(fc.constant('range'), rangeHeader), fc.tuple(fc.constant('if-none-match'), hostileHeaderValue), fc.tuple(fc.constant('if-range'), hostileHeaderValue));
  }
  if (operation.template.includes('/public/links/')) {
    candidates.push(
      fc.tuple(fc.constant('x-link-password'), fc.oneof(fc.constant('correct horse'), hostileHeaderValue)),
      fc.tuple(fc.constant('x-link-session'), hostileHeaderValue),
      fc.tuple(fc.constant('cookie'), hostileHeaderValue.map((v) => `link_session=${v}`)),
    );
  }
  if (operation.template.includes('/chunks/')) candidates.push(fc.tuple(fc.constant('x-chunk-sha256'), fc.oneof(hostileHeaderValue, fc.constant('0'.repeat(64)))));
  return fc.subarray(candidates, { minLength: 1, maxLength: 3 }).chain((chosen) => fc.tuple(...chosen));
}

/** Headers a well-behaved client would send for this operation (a link password for public links, say). */
function plausibleHeaders(operation: Operation): fc.Arbitrary<[string, string | Ref][]> {
  if (operation.template.includes('/public/links/')) return fc.option(fc.constant([['x-link-password', 'correct horse'] as [string, string]]), { freq: 2, nil: [] });
  if (operation.template.includes('/content') || operation.template.includes('/downloads/')) return fc.option(rangeHeader.map((r) => [['range', r] as [string, string]]), { freq: 2, nil: [] });
  return fc.constant([]);
}

type Body = GeneratedRequest['body'];

function plausibleBody(operation: Operation): fc.Arbitrary<Body> {
  if (operation.jsonBody) return plausibleFor(operation.jsonBody, '', 0).map((json) => ({ json }));
  // Random bytes, or exactly the fixture session's chunk sizes (65536, and 34464 for its last chunk) so chunk PUTs are accepted.
  if (operation.rawBodyType) return fc.oneof(fc.uint8Array({ maxLength: 2048 }).map((bytes) => ({ text: Buffer.from(bytes) })), fc.constantFrom(65536, 34464).map((size) => ({ text: Buffer.alloc(size, 7) })));
  return fc.constant(undefined);
}

function hostileBody(operation: Operation): fc.Arbitrary<Body> {
  if (operation.jsonBody) {
    return fc.oneof(
      { weight: 5, arbitrary: withOneMutation(plausibleFor(operation.jsonBody, '', 0)).map((json) => ({ json })) },
      { weight: 1, arbitrary: wrongTypeValue.map((json) => ({ json })) },
      { weight: 2, arbitrary: fc.oneof(junkJsonText, invalidUtf8).map((text) => ({ text })) },
      { weight: 1, arbitrary: fc.constant(undefined) },
    );
  }
  if (operation.rawBodyType) return fc.oneof(fc.constant({ text: '' }), fc.constant(undefined), junkJsonText.map((text) => ({ text })));
  // fetch cannot send a GET body; a DELETE or POST without a documented body gets junk JSON.
  if (operation.method === 'GET') return fc.constant(undefined);
  return fc.oneof(junkJsonText, invalidUtf8).map((text) => ({ text, contentType: 'application/json' }));
}

type Target = 'none' | 'path' | 'query' | 'headers' | 'body';

/**
 * A request for `operation`: plausible in every part (real ids, valid values, a real caller) except the one
 * part chosen as the target of a hostile value, so each request probes one thing past the checks before it.
 */
export function requestArbitrary(operation: Operation): fc.Arbitrary<GeneratedRequest> {
  const pathParameters = operation.parameters.filter((p) => p.in === 'path');
  const hasQuery = operation.parameters.some((p) => p.in === 'query');
  const targets: fc.WeightedArbitrary<Target>[] = [
    { weight: 2, arbitrary: fc.constant<Target>('none') },
    { weight: 1, arbitrary: fc.constant<Target>('headers') },
  ];
  if (pathParameters.length) targets.push({ weight: 3, arbitrary: fc.constant<Target>('path') });
  if (hasQuery) targets.push({ weight: 3, arbitrary: fc.constant<Target>('query') });
  if (operation.method !== 'GET') targets.push({ weight: operation.jsonBody ? 5 : 1, arbitrary: fc.constant<Target>('body') });
  const plausiblePath = fc.tuple(...pathParameters.map((p) => plausiblePathValue(operation, p)));
  const path = pathParameters.length
    ? fc.tuple(plausiblePath, fc.nat({ max: pathParameters.length - 1 }), hostilePathValue).map(([values, at, hostile]) => ({ plausible: values, hostile: values.map((v, i) => (i === at ? hostile : v)) }))
    : fc.constant({ plausible: [] as Part[], hostile: [] as Part[] });
  return fc
    .record({
      target: fc.oneof(...targets),
      caller: callerArbitrary(operation),
      path,
      plausibleQuery: plausibleQuery(operation),
      hostileQuery: hasQuery ? hostileQuery(operation) : fc.constant([] as Pairs),
      plausibleHeaders: plausibleHeaders(operation),
      hostileHeaders: hostileHeaders(operation),
      plausibleBody: plausibleBody(operation),
      hostileBody: hostileBody(operation),
      contentType: fc.oneof(
        { weight: 9, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16', 'application/json; charset=latin1', 'application/merge-patch+json') },
      ),
      webhookSignature: operation.template.endsWith('/webhooks/scaikey') ? fc.constantFrom<'valid' | 'stale' | 'wrong' | 'none'>('valid', 'valid', 'valid', 'stale', 'wrong', 'none') : fc.constant(undefined),
    })
    .map((r) => {
      const pathValues = r.target === 'path' ? r.path.hostile : r.path.plausible;
      const body = r.target === 'body' ? r.hostileBody : r.plausibleBody;
      return {
        operation,
        caller: r.caller,
        path: Object.fromEntries(pathParameters.map((p, i) => [p.name, pathValues[i]!])),
        query: r.target === 'query' ? r.hostileQuery : r.plausibleQuery,
        headers: r.target === 'headers' ? r.hostileHeaders : r.plausibleHeaders,
        body: body && r.target === 'body' && 'json' in body && r.contentType ? { ...body, contentType: r.contentType } : body,
        webhookSignature: r.webhookSignature,
      };
    });
}

export { RawJsonNumber };
