/**
 * What the protocol code itself says exists, read from the code rather than copied by hand:
 * the `t` (and `kind`) literals of the frame unions in frames.ts through the TypeScript type
 * checker, and the frame types validate.ts has a `case` for. A frame added to a union or to the
 * validator shows up here without anyone updating a list.
 */
import path from 'node:path';
import ts from 'typescript';

const SRC = path.join(__dirname, '..', 'src');

export interface FrameCatalog {
  /** `t` of every client request (ClientRequest). */
  readonly requests: ReadonlySet<string>;
  /** `t` of every fire-and-forget client frame (ClientNotice). */
  readonly notices: ReadonlySet<string>;
  /** `t` of every server frame (ServerFrame). */
  readonly serverFrames: ReadonlySet<string>;
  /** `kind` of every `evt` frame (EventFrame). */
  readonly eventKinds: ReadonlySet<string>;
  /** The keys of OkFields: the requests that have an `ok` reply shape. */
  readonly okReplies: ReadonlySet<string>;
  /** The frame types validate.ts switches on (its `case` labels). */
  readonly validatorCases: ReadonlySet<string>;
}

/** The string literal values a property of every member of a union type can take. */
function literalsOf(checker: ts.TypeChecker, type: ts.Type, property: string): Set<string> {
  const out = new Set<string>();
  const members = type.isUnion() ? type.types : [type];
  for (const member of members) {
    const symbol = checker.getPropertyOfType(member, property);
    if (symbol === undefined) throw new Error(`a member of the union has no property ${property}`);
    const valueType = checker.getTypeOfSymbol(symbol);
    for (const part of valueType.isUnion() ? valueType.types : [valueType]) {
      if (!part.isStringLiteral()) {
        throw new Error(`${property} is not a string literal: ${checker.typeToString(part)}`);
      }
      out.add(part.value);
    }
  }
  return out;
}

function exportedType(
  checker: ts.TypeChecker,
  exports: readonly ts.Symbol[],
  name: string,
): ts.Type {
  const symbol = exports.find((s) => s.name === name);
  if (symbol === undefined) throw new Error(`frames.ts exports no ${name}`);
  return checker.getDeclaredTypeOfSymbol(symbol);
}

/** Every `case '...':` label in a source file. */
function caseLabels(source: ts.SourceFile): Set<string> {
  const out = new Set<string>();
  const visit = (node: ts.Node): void => {
    if (ts.isCaseClause(node) && ts.isStringLiteral(node.expression)) out.add(node.expression.text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

export function readFrameCatalog(): FrameCatalog {
  const framesFile = path.join(SRC, 'frames.ts');
  const validateFile = path.join(SRC, 'validate.ts');
  const program = ts.createProgram([framesFile, validateFile], {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
  });
  const checker = program.getTypeChecker();
  const frames = program.getSourceFile(framesFile);
  const validate = program.getSourceFile(validateFile);
  if (frames === undefined || validate === undefined) throw new Error('protocol sources not found');
  const moduleSymbol = checker.getSymbolAtLocation(frames);
  if (moduleSymbol === undefined) throw new Error('frames.ts is not a module');
  const exports = checker.getExportsOfModule(moduleSymbol);
  const type = (name: string): ts.Type => exportedType(checker, exports, name);
  return {
    requests: literalsOf(checker, type('ClientRequest'), 't'),
    notices: literalsOf(checker, type('ClientNotice'), 't'),
    serverFrames: literalsOf(checker, type('ServerFrame'), 't'),
    eventKinds: literalsOf(checker, type('EventFrame'), 'kind'),
    okReplies: new Set(
      type('OkFields')
        .getProperties()
        .map((p) => p.name),
    ),
    validatorCases: caseLabels(validate),
  };
}
