// Prefixed ULID identifiers (`usr_01J…`), the public id format of every resource.
import { monotonicFactory } from 'ulid';

const nextUlid = monotonicFactory();

export const idPrefixes = {
  partner: 'ptn',
  tenant: 'ten',
  user: 'usr',
  group: 'grp',
  apiKey: 'key',
  request: 'req',
  file: 'fil',
  folder: 'fld',
  space: 'spc',
  share: 'shr',
  upload: 'upl',
  version: 'ver',
  job: 'job',
  connector: 'con',
  device: 'dev',
  syncSnapshot: 'snp',
  conflict: 'cfl',
  link: 'lnk',
  member: 'mbr',
  invitation: 'inv',
} as const;

export type IdKind = keyof typeof idPrefixes;

export function newId(kind: IdKind): string {
  return `${idPrefixes[kind]}_${nextUlid()}`;
}

const idPattern = /^[a-z]{3}_[0-9A-HJKMNP-TV-Z]{26}$/;

/** True when `value` looks like an id of the given kind; used to turn garbage path ids into 404 without a query. */
export function isId(kind: IdKind, value: string): boolean {
  return value.startsWith(`${idPrefixes[kind]}_`) && idPattern.test(value);
}
