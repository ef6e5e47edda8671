/**
 * docs/protocol.md is the contract other teams write clients from: its tables of frames, event
 * kinds, error codes, close codes, features and limits must list exactly what the code has.
 * The code's side is read from the code (frame unions through the type checker, the
 * validator's cases, the exported constants), so adding a frame or a code without documenting
 * it fails here, and so does a documented entry the code no longer has.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  ChatError,
  CloseCode,
  ErrorCodes,
  FEATURES,
  defaultLimits,
  httpStatusOf,
  validateClientFrame,
} from '../src';
import type { DocTable } from './doc-tables';
import { firstColumn, tableUnder, unquoted } from './doc-tables';
import type { FrameCatalog } from './frame-catalog';
import { readFrameCatalog } from './frame-catalog';

const DOC = path.join(__dirname, '..', '..', '..', 'docs', 'protocol.md');

/** Both directions at once: what the code has and the doc lacks, and the other way round. */
function difference(
  documented: Iterable<string>,
  inCode: Iterable<string>,
): {
  undocumented: string[];
  notInCode: string[];
} {
  const doc = new Set(documented);
  const code = new Set(inCode);
  return {
    undocumented: [...code].filter((v) => !doc.has(v)).sort(),
    notInCode: [...doc].filter((v) => !code.has(v)).sort(),
  };
}

const NONE = { undocumented: [], notInCode: [] };

/** Table cells as "name=value" pairs, so that a wrong value shows as a difference too. */
function pairs(table: DocTable, name: number, value: number): string[] {
  return table.rows.map((r) => `${unquoted(r[name] ?? '')}=${unquoted(r[value] ?? '')}`);
}

/** Undefined when the validator knows the frame type, else the "unknown" message. */
function unknownToValidator(t: string): string | undefined {
  try {
    validateClientFrame({ t, id: 1 }, defaultLimits);
    return undefined;
  } catch (err) {
    if (!(err instanceof ChatError)) throw err;
    return err.message.startsWith('unknown frame type') ? err.message : undefined;
  }
}

describe('docs/protocol.md lists exactly what the protocol code has', () => {
  let doc: string;
  let code: FrameCatalog;

  beforeAll(() => {
    doc = readFileSync(DOC, 'utf8');
    code = readFrameCatalog();
  });

  it('reads a non-trivial catalog from the code (the comparison below means something)', () => {
    expect(code.requests.has('send')).toBe(true);
    expect(code.notices.has('ack')).toBe(true);
    expect(code.serverFrames.has('welcome')).toBe(true);
    expect(code.eventKinds.has('message')).toBe(true);
    expect(code.validatorCases.has('sync')).toBe(true);
  });

  it('client requests: the table, the ClientRequest union and OkFields agree', () => {
    const documented = firstColumn(tableUnder(doc, 'Client requests'));
    expect(difference(documented, code.requests)).toEqual(NONE);
    expect(difference(documented, code.okReplies)).toEqual(NONE);
  });

  it('client notices: the table and the ClientNotice union agree', () => {
    const documented = firstColumn(tableUnder(doc, 'Client notices'));
    expect(difference(documented, code.notices)).toEqual(NONE);
  });

  it('every client frame type in the doc is one the validator accepts, and the other way round', () => {
    const documented = [
      ...firstColumn(tableUnder(doc, 'Client requests')),
      ...firstColumn(tableUnder(doc, 'Client notices')),
    ];
    expect(difference(documented, code.validatorCases)).toEqual(NONE);
    const refused = documented.map(unknownToValidator).filter((m) => m !== undefined);
    expect(refused).toEqual([]);
  });

  it('server frames: the table and the ServerFrame union agree', () => {
    const documented = firstColumn(tableUnder(doc, 'Server frames'));
    expect(difference(documented, code.serverFrames)).toEqual(NONE);
  });

  it('event kinds: the table and the EventFrame union agree', () => {
    const documented = firstColumn(tableUnder(doc, 'Event kinds'));
    expect(difference(documented, code.eventKinds)).toEqual(NONE);
  });

  it('error codes: the table and ErrorCodes agree, with the HTTP status of httpStatusOf', () => {
    const table = tableUnder(doc, 'Error codes');
    expect(difference(firstColumn(table), ErrorCodes)).toEqual(NONE);
    const statuses = ErrorCodes.map((c) => `${c}=${httpStatusOf[c]}`);
    expect(difference(pairs(table, 0, 1), statuses)).toEqual(NONE);
  });

  it('close codes: the table and CloseCode agree, value and name', () => {
    const table = tableUnder(doc, 'Close codes');
    const inCode = Object.entries(CloseCode).map(([name, value]) => `${value}=${name}`);
    expect(difference(pairs(table, 0, 1), inCode)).toEqual(NONE);
  });

  it('features: the table and FEATURES agree', () => {
    const documented = firstColumn(tableUnder(doc, 'Features'));
    expect(difference(documented, FEATURES)).toEqual(NONE);
  });

  it('limits: the table and defaultLimits agree, name and default', () => {
    const table = tableUnder(doc, 'Limits');
    const inCode = Object.entries(defaultLimits).map(([name, value]) => `${name}=${value}`);
    expect(difference(pairs(table, 0, 1), inCode)).toEqual(NONE);
  });
});
