// Strict parsing of a Content-Type header (RFC 9110 section 8.3.1): `type "/" subtype` followed by
// `; name=value` parameters, where type, subtype and name are tokens and a value is a token or a
// quoted string. Stricter than the RFC in one place on purpose: an empty parameter (a trailing
// `;`, or `;;`) is refused, since no client of dram sends one and a lenient reading is how a
// malformed `application/json; charset=` came to be taken for JSON.
//
// Invariants: a result's type, subtype and parameter names are lower case; a parameter name
// appears at most once; the parse is one linear pass over a header of at most the request head's
// size (no backtracking regular expression).
//
// Called by: src/api/request-guard.ts (every request that has a body).

export interface MediaType {
  readonly type: string;
  readonly subtype: string;
  /** Lower-case names; values as sent (quotes and escapes removed). */
  readonly parameters: ReadonlyMap<string, string>;
}

// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
const tokenCharacters = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/;

/** The end of the token starting at `from` (== `from` when there is none). */
function tokenEnd(text: string, from: number): number {
  let end = from;
  while (end < text.length && tokenCharacters.test(text.charAt(end))) end++;
  return end;
}

function whitespaceEnd(text: string, from: number): number {
  let end = from;
  while (text.charAt(end) === ' ' || text.charAt(end) === '\t') end++;
  return end;
}

/** The content of the quoted string opening at `from` and where it ends, or undefined when malformed. */
function quotedString(text: string, from: number): { value: string; end: number } | undefined {
  let value = '';
  let position = from + 1;
  while (position < text.length) {
    const character = text.charAt(position);
    if (character === '"') return { value, end: position + 1 };
    if (character === '\\') {
      if (position + 1 >= text.length) return undefined;
      value += text.charAt(position + 1);
      position += 2;
      continue;
    }
    const code = character.charCodeAt(0);
    if ((code < 0x20 && character !== '\t') || code === 0x7f) return undefined;
    value += character;
    position++;
  }
  return undefined;
}

/** A parameter value (token or quoted string) at `from`, or undefined when there is none. */
function parameterValue(text: string, from: number): { value: string; end: number } | undefined {
  if (text.charAt(from) === '"') return quotedString(text, from);
  const end = tokenEnd(text, from);
  return end === from ? undefined : { value: text.slice(from, end), end };
}

/** The media type, or undefined when the header is malformed. */
export function parseMediaType(header: string): MediaType | undefined {
  const text = header.trim();
  const typeEnd = tokenEnd(text, 0);
  if (typeEnd === 0 || text.charAt(typeEnd) !== '/') return undefined;
  const subtypeEnd = tokenEnd(text, typeEnd + 1);
  if (subtypeEnd === typeEnd + 1) return undefined;
  const parameters = new Map<string, string>();
  let position = subtypeEnd;
  for (;;) {
    position = whitespaceEnd(text, position);
    if (position >= text.length) break;
    if (text.charAt(position) !== ';') return undefined;
    const nameStart = whitespaceEnd(text, position + 1);
    const nameEnd = tokenEnd(text, nameStart);
    const name = text.slice(nameStart, nameEnd).toLowerCase();
    if (name === '' || text.charAt(nameEnd) !== '=' || parameters.has(name)) return undefined;
    const parsed = parameterValue(text, nameEnd + 1);
    if (parsed === undefined || parsed.value === '') return undefined;
    parameters.set(name, parsed.value);
    position = parsed.end;
  }
  return {
    type: text.slice(0, typeEnd).toLowerCase(),
    subtype: text.slice(typeEnd + 1, subtypeEnd).toLowerCase(),
    parameters,
  };
}

/**
 * JSON as dram reads it: `application/json` with no parameter but an optional UTF-8 charset (RFC
 * 8259: JSON exchanged between systems is UTF-8; any other charset would be decoded wrongly).
 */
export function isJsonMediaType(mediaType: MediaType): boolean {
  if (mediaType.type !== 'application' || mediaType.subtype !== 'json') return false;
  for (const [name, value] of mediaType.parameters) {
    if (name !== 'charset' || value.toLowerCase() !== 'utf-8') return false;
  }
  return true;
}
