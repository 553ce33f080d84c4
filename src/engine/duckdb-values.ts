// DuckDB values to plain JSON values, and JS arguments to DuckDB values. Every answer of the query
// engine goes through `jsonFromDuckDb`, so an endpoint sees the same JSON locally as it would after
// a trip through HTTP. The choices, documented for endpoint authors in docs/endpoints.md:
//  - integers of up to 32 bits: numbers. BIGINT, HUGEINT and the unsigned ones: numbers when they
//    are safe integers (|v| <= 2^53 - 1); a larger one fails the query (DRAM_ERR_QUERY_FAILED,
//    naming the column) rather than turning into a rounded number or, for some rows only, a string:
//    cast it to VARCHAR or DOUBLE in SQL to say which you want.
//  - FLOAT, DOUBLE: numbers; NaN and the infinities become null (JSON has no spelling for them).
//  - DECIMAL: the nearest double (cast to VARCHAR for the exact digits).
//  - DATE: `YYYY-MM-DD`. TIMESTAMP (all precisions, with or without time zone): ISO 8601 in UTC,
//    `2024-01-31T12:00:00.000Z`, with 6 fraction digits when there are microseconds (nanoseconds are
//    cut to microseconds); a value outside JS Date's range (and +-infinity) is DuckDB's own text.
//  - TIME, TIME_TZ, INTERVAL, UUID, ENUM, BIT, GEOMETRY: DuckDB's text form; BLOB: base64.
//  - LIST and ARRAY: arrays; STRUCT: objects; MAP: arrays of `{key, value}` (keys need not be
//    strings); UNION: `{tag, value}`; VARIANT: its value converted by these rules.
//
// Arguments (`SqlArgument`): strings bind as VARCHAR, safe integers and bigints as BIGINT, other
// numbers as DOUBLE, booleans as BOOLEAN, arrays as LISTs of their elements' type.
//
// Called by: src/engine/duckdb-engine.ts.

import {
  arrayFromArrayValue,
  arrayFromListValue,
  BIGINT,
  BOOLEAN,
  booleanFromValue,
  createDuckDBValueConverter,
  DOUBLE,
  DuckDBBlobValue,
  DuckDBTimestampMillisecondsValue,
  DuckDBTimestampNanosecondsValue,
  DuckDBTimestampSecondsValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  DuckDBTypeId,
  doubleFromDecimalValue,
  fromVariantValue,
  listValue,
  LIST,
  nullConverter,
  numberFromValue,
  objectArrayFromMapValue,
  objectFromStructValue,
  objectFromUnionValue,
  SQLNULL,
  VARCHAR,
  type DuckDBType,
  type DuckDBValue,
  type DuckDBValueConverter,
} from '@duckdb/node-api';
import type { JsonValue, SqlArgument } from '../data/query-engine.ts';

/** A value the conversion refuses; the engine turns it into DRAM_ERR_QUERY_FAILED naming the column. */
export class UnconvertibleValueError extends Error {
  override readonly name = 'UnconvertibleValueError';
}

const safeMax = BigInt(Number.MAX_SAFE_INTEGER);

function exactInteger(value: DuckDBValue, type: DuckDBType): number {
  if (typeof value !== 'bigint') return Number(value);
  if (value > safeMax || value < -safeMax)
    throw new UnconvertibleValueError(
      `${type.toString()} value ${value} is beyond 2^53 - 1, which a JSON number cannot hold exactly; cast it to VARCHAR or DOUBLE in the SQL`,
    );
  return Number(value);
}

function finiteOrNull(value: DuckDBValue): number | null {
  const number = Number(value);
  return Number.isFinite(number) ? number : null;
}

/** JS Date's range, in microseconds since the epoch. */
const dateMicrosMax = 8_640_000_000_000_000_000n;

function microsOf(value: DuckDBValue): bigint | undefined {
  if (value instanceof DuckDBTimestampValue || value instanceof DuckDBTimestampTZValue) return value.micros;
  if (value instanceof DuckDBTimestampSecondsValue) return value.seconds * 1_000_000n;
  if (value instanceof DuckDBTimestampMillisecondsValue) return value.millis * 1000n;
  if (value instanceof DuckDBTimestampNanosecondsValue) {
    const micros = value.nanos / 1000n;
    return value.nanos < 0n && micros * 1000n !== value.nanos ? micros - 1n : micros;
  }
  return undefined;
}

/** ISO 8601 in UTC; 3 fraction digits, or 6 when the value has microseconds. */
export function isoFromTimestamp(value: DuckDBValue): string {
  const micros = microsOf(value);
  if (micros === undefined || micros > dateMicrosMax || micros < -dateMicrosMax) return String(value);
  const remainder = ((micros % 1000n) + 1000n) % 1000n;
  const iso = new Date(Number((micros - remainder) / 1000n)).toISOString();
  return remainder === 0n ? iso : `${iso.slice(0, -1)}${remainder.toString().padStart(3, '0')}Z`;
}

function base64FromBlob(value: DuckDBValue): string {
  if (value instanceof DuckDBBlobValue) return Buffer.from(value.bytes).toString('base64');
  throw new UnconvertibleValueError('expected a BLOB value');
}

function unsupported(_value: DuckDBValue, type: DuckDBType): never {
  throw new UnconvertibleValueError(`values of type ${type.toString()} have no JSON form here`);
}

const text = (value: DuckDBValue): string => String(value);

/** The library's converters answer `T | null`; T is therefore JSON without null. */
type Converter = DuckDBValueConverter<Exclude<JsonValue, null>>;

// Each entry is typed to answer a JsonValue; the library's structural converters are generic over it.
const convertersByTypeId: Record<DuckDBTypeId, Converter | undefined> = {
  [DuckDBTypeId.INVALID]: unsupported,
  [DuckDBTypeId.BOOLEAN]: booleanFromValue,
  [DuckDBTypeId.TINYINT]: numberFromValue,
  [DuckDBTypeId.SMALLINT]: numberFromValue,
  [DuckDBTypeId.INTEGER]: numberFromValue,
  [DuckDBTypeId.BIGINT]: exactInteger,
  [DuckDBTypeId.UTINYINT]: numberFromValue,
  [DuckDBTypeId.USMALLINT]: numberFromValue,
  [DuckDBTypeId.UINTEGER]: numberFromValue,
  [DuckDBTypeId.UBIGINT]: exactInteger,
  [DuckDBTypeId.FLOAT]: finiteOrNull,
  [DuckDBTypeId.DOUBLE]: finiteOrNull,
  [DuckDBTypeId.TIMESTAMP]: isoFromTimestamp,
  [DuckDBTypeId.DATE]: text,
  [DuckDBTypeId.TIME]: text,
  [DuckDBTypeId.INTERVAL]: text,
  [DuckDBTypeId.HUGEINT]: exactInteger,
  [DuckDBTypeId.UHUGEINT]: exactInteger,
  [DuckDBTypeId.VARCHAR]: text,
  [DuckDBTypeId.BLOB]: base64FromBlob,
  [DuckDBTypeId.DECIMAL]: doubleFromDecimalValue,
  [DuckDBTypeId.TIMESTAMP_S]: isoFromTimestamp,
  [DuckDBTypeId.TIMESTAMP_MS]: isoFromTimestamp,
  [DuckDBTypeId.TIMESTAMP_NS]: isoFromTimestamp,
  [DuckDBTypeId.ENUM]: text,
  [DuckDBTypeId.LIST]: arrayFromListValue,
  [DuckDBTypeId.STRUCT]: objectFromStructValue,
  [DuckDBTypeId.MAP]: objectArrayFromMapValue,
  [DuckDBTypeId.ARRAY]: arrayFromArrayValue,
  [DuckDBTypeId.UUID]: text,
  [DuckDBTypeId.UNION]: objectFromUnionValue,
  [DuckDBTypeId.BIT]: text,
  [DuckDBTypeId.TIME_TZ]: text,
  [DuckDBTypeId.TIMESTAMP_TZ]: isoFromTimestamp,
  [DuckDBTypeId.ANY]: unsupported,
  [DuckDBTypeId.BIGNUM]: exactIntegerFromText,
  [DuckDBTypeId.SQLNULL]: nullConverter,
  [DuckDBTypeId.STRING_LITERAL]: unsupported,
  [DuckDBTypeId.INTEGER_LITERAL]: unsupported,
  [DuckDBTypeId.TIME_NS]: text,
  [DuckDBTypeId.GEOMETRY]: text,
  [DuckDBTypeId.VARIANT]: fromVariantValue,
};

function exactIntegerFromText(value: DuckDBValue, type: DuckDBType): number {
  return exactInteger(BigInt(String(value)), type);
}

/** Converts one DuckDB value of `type` to JSON by the rules at the top of this file. */
export const jsonFromDuckDb: Converter = createDuckDBValueConverter(convertersByTypeId);

/** A DuckDB value and its type for one argument, by the rules at the top of this file. */
export function duckDbArgument(argument: SqlArgument): { value: DuckDBValue; type: DuckDBType } {
  if (argument === null) return { value: null, type: SQLNULL };
  switch (typeof argument) {
    case 'string':
      return { value: argument, type: VARCHAR };
    case 'boolean':
      return { value: argument, type: BOOLEAN };
    case 'bigint':
      return { value: argument, type: BIGINT };
    case 'number':
      return Number.isSafeInteger(argument)
        ? { value: BigInt(argument), type: BIGINT }
        : { value: argument, type: DOUBLE };
    default: {
      const items = argument.map(duckDbArgument);
      const itemType = listItemType(items.map((item) => item.type));
      const values = items.map(({ value }) =>
        itemType.typeId === DuckDBTypeId.DOUBLE && typeof value === 'bigint' ? Number(value) : value,
      );
      return { value: listValue(values), type: LIST(itemType) };
    }
  }
}

/** The one type of a list's items: BIGINT and DOUBLE together are DOUBLE; nulls take the others'. */
function listItemType(types: readonly DuckDBType[]): DuckDBType {
  const known = types.filter((type) => type.typeId !== DuckDBTypeId.SQLNULL);
  const first = known[0];
  if (first === undefined) return VARCHAR;
  const names = new Set(known.map((type) => type.toString()));
  if (names.size === 1) return first;
  if ([...names].every((name) => name === 'BIGINT' || name === 'DOUBLE')) return DOUBLE;
  throw new UnconvertibleValueError(`a list argument mixes types: ${[...names].join(', ')}`);
}
