// Input checks shared by every call: each throws a TypeError (wrong kind of value) or a
// RangeError (right kind, wrong value) whose message starts with the field's path.
// Hot paths (a batch checks thousands of specs) test with the is* predicates first and call
// the matching expect* only to throw, so a field's path is built only when it is reported.
import { parseAddress, type AddressFamily } from './address';

export type Fields = Record<string, unknown>;

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'object') return 'an object';
  return String(value);
}

export function expectObject(value: unknown, field: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${field} must be an object, got ${describe(value)}`);
  }
  return value as Fields;
}

/**
 * Rejects own keys outside `allowed`, so a misspelt option is an error rather than ignored;
 * `besides` is one more key the caller reads itself (not listed as an option in the error).
 * for-in walks the object's cached key list; Object.keys() would allocate an array per call,
 * which a batch of thousands of specs pays for in garbage collection.
 */
export function rejectUnknownKeys(obj: Fields, allowed: ReadonlySet<string>, field: string, besides?: string): void {
  for (const key in obj) {
    if (!allowed.has(key) && key !== besides && obj[key] !== undefined && Object.hasOwn(obj, key)) {
      throw new TypeError(`${field}.${key} is not a known option (known: ${[...allowed].join(', ')})`);
    }
  }
}

/** Whether expectInteger(value, _, min, max) would accept `value`. */
export function isIntegerIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

export function expectInteger(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number') throw new TypeError(`${field} must be an integer, got ${describe(value)}`);
  if (!Number.isInteger(value)) throw new RangeError(`${field} must be an integer, got ${value}`);
  if (value < min || value > max) throw new RangeError(`${field} must be between ${min} and ${max}, got ${value}`);
  return value;
}

export function optionalInteger(value: unknown, field: string, min: number, max: number): number | undefined {
  return value === undefined ? undefined : expectInteger(value, field, min, max);
}

export function expectBoolean(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${field} must be a boolean, got ${describe(value)}`);
  return value;
}

export function expectString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new TypeError(`${field} must be a string, got ${describe(value)}`);
  return value;
}

/** Whether expectOneOf(value, _, allowed) would accept `value`. */
export function isOneOf<T extends string>(value: unknown, allowed: readonly T[]): value is T {
  return typeof value === 'string' && (allowed as readonly string[]).includes(value);
}

export function expectOneOf<T extends string>(value: unknown, field: string, allowed: readonly T[]): T {
  const text = expectString(value, field);
  if (!(allowed as readonly string[]).includes(text)) {
    throw new RangeError(`${field} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(value)}`);
  }
  return text as T;
}

const addressScratch = new Uint8Array(16);

export function expectAddress(value: unknown, field: string): { address: string; family: AddressFamily } {
  return { address: value as string, family: expectAddressInto(value, field, addressScratch, 0) };
}

/**
 * The family of an address `value` after writing its 16 bytes at `out[offset]`, or undefined
 * when it is not one (then expectAddressInto throws the error to report).
 */
export function addressFamilyInto(value: unknown, out: Uint8Array, offset: number): AddressFamily | undefined {
  return typeof value === 'string' ? parseAddress(value, out, offset) : undefined;
}

/**
 * Checks an IPv4 or IPv6 address and writes its 16 bytes at `out[offset]`; returns its family.
 * @throws {TypeError} when `value` is not a string.
 * @throws {RangeError} when it is not an address (zones such as '%eth0' included).
 */
export function expectAddressInto(value: unknown, field: string, out: Uint8Array, offset: number): AddressFamily {
  const family = addressFamilyInto(value, out, offset);
  if (family) return family;
  const text = expectString(value, field);
  throw new RangeError(`${field} must be an IPv4 or IPv6 address, got ${describe(text)}`);
}

export function expectPort(value: unknown, field: string, min = 0): number {
  return expectInteger(value, field, min, 65535);
}
