// Canonical text and hashes for the JSON values that histories carry (register values, set
// elements, list elements). Two values are the same value exactly when their canonical texts are
// equal: object keys are sorted, so {"a":1,"b":2} and {"b":2,"a":1} compare equal, which plain
// JSON.stringify would not guarantee. Equal texts always hash equally.

/** The canonical JSON text of a value; `undefined` gets its own text so it never equals null. */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((item: unknown) => canonicalJson(item)).join(',')}]`;
  const record = value as Record<string, unknown>;
  const fields = Object.keys(record)
    .sort()
    .map((name) => `${JSON.stringify(name)}:${canonicalJson(record[name])}`);
  return `{${fields.join(',')}}`;
}

/** A 32-bit FNV-1a hash of a string's UTF-16 code units. */
export function hashText(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Short text for a value in reports: canonical JSON, cut to a readable length. */
export function describeValue(value: unknown, maxChars = 60): string {
  const text = canonicalJson(value);
  return text.length <= maxChars ? text : `${text.slice(0, maxChars - 1)}…`;
}
