/**
 * The YAML diagnostic block of a TAP 14 test point (`---` … `...`), read as
 * the flat map of text fields kernels write: `key: value` with plain,
 * 'single' or "double" quoted scalars (double quotes decode `\"`, `\\`,
 * `\n`, `\t`, `\xNN`, `\uNNNN`). A line indented deeper than the keys (a
 * block scalar, a nested map, a list) is kept as text under the key before
 * it. Values stay text: `0x101000` is an address, not the number 1052672.
 * Never throws: a line that is not `key: value` is kept under `line N`.
 */

const FIELD = /^([^\s:#][^:]*?)\s*:(?:\s+(.*))?$/;
const ESCAPES: Readonly<Record<string, string>> = {
  "0": "\0",
  a: "\x07",
  b: "\b",
  t: "\t",
  n: "\n",
  v: "\v",
  f: "\f",
  r: "\r",
  e: "\x1b",
  " ": " ",
  '"': '"',
  "/": "/",
  "\\": "\\",
};

/** A double-quoted scalar's content (without the quotes) decoded. */
function decodeDouble(body: string): string {
  return body.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)/g, (all, e: string) => {
    if (e.length > 1) return String.fromCharCode(parseInt(e.slice(1), 16));
    return ESCAPES[e] ?? all;
  });
}

/** A scalar as text: quotes removed and decoded, plain text trimmed. */
export function yamlScalar(raw: string): string {
  const text = raw.trim();
  if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) {
    return decodeDouble(text.slice(1, -1));
  }
  if (text.length >= 2 && text.startsWith("'") && text.endsWith("'")) {
    return text.slice(1, -1).replace(/''/g, "'");
  }
  // A plain scalar ends at ` #` (a comment).
  const comment = text.search(/\s#/);
  return comment < 0 ? text : text.slice(0, comment).trimEnd();
}

function indentOf(line: string): number {
  const m = /^[ \t]*/.exec(line);
  return m === null ? 0 : m[0].length;
}

/** The fields of a diagnostic block's lines (between `---` and `...`). */
export function readYamlBlock(lines: readonly string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  const body = lines.filter((l) => l.trim() !== "");
  if (body.length === 0) return fields;
  const base = body.reduce((min, l) => Math.min(min, indentOf(l)), Infinity);
  let last: string | null = null;
  body.forEach((line, i) => {
    const indent = indentOf(line);
    const text = line.slice(indent);
    const m = indent === base ? FIELD.exec(text) : null;
    if (m !== null) {
      last = m[1];
      const value = m[2] ?? "";
      fields[last] = value === "|" || value === ">" || value === "|-" || value === ">-"
        ? ""
        : yamlScalar(value);
    } else if (last !== null && indent > base) {
      fields[last] = fields[last] === "" ? text : `${fields[last]}\n${text}`;
    } else {
      fields[`line ${i + 1}`] = text;
    }
  });
  return fields;
}
