/** Reads the tables of a Markdown document by the heading above them. */

export interface DocTable {
  readonly header: readonly string[];
  /** Cells of each row, backticks kept (the caller decides what a cell means). */
  readonly rows: readonly (readonly string[])[];
}

function cellsOf(line: string): string[] {
  // `\|` inside a cell is an escaped pipe, not a column break.
  return line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());
}

/**
 * The first table under the heading whose text is exactly `heading` (any level), before the
 * next heading. Throws when there is no such heading or no table under it.
 */
export function tableUnder(markdown: string, heading: string): DocTable {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => /^#{1,6} /.test(l) && l.replace(/^#+ /, '') === heading);
  if (start < 0) throw new Error(`no heading "${heading}" in the document`);
  const table: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (/^#{1,6} /.test(line)) break;
    if (line.trim().startsWith('|')) table.push(line);
    else if (table.length > 0) break;
  }
  if (table.length < 2) throw new Error(`no table under the heading "${heading}"`);
  const [header, , ...rows] = table.map(cellsOf);
  return { header: header ?? [], rows };
}

/** The text of a cell without the backticks around it: "`send`" -> "send". */
export function unquoted(cell: string): string {
  return cell.replace(/^`(.*)`$/, '$1');
}

/** The first column of a table, unquoted. */
export function firstColumn(table: DocTable): string[] {
  return table.rows.map((r) => unquoted(r[0] ?? ''));
}
