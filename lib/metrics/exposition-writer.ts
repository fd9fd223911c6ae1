// Writes exposition text straight into fixed-size buffers: a 1,000 × 10 table is some 200,000
// lines (30 MB), and building them as JavaScript strings left most of a scrape's time to the
// garbage collector. Here a line is three copies of pre-encoded bytes and a number written in
// place, with no allocation; full chunks are handed out for the response, so that the
// renderer can yield to the event loop between them.
import { writeU64 } from '../table-view';

/** Bytes per chunk handed out: small enough that filling one is a short slice of the event loop. */
export const CHUNK_BYTES = 32 * 1024;

/** Chunks are cut from slabs of this size (one allocation per 32 chunks rather than one each). */
const SLAB_BYTES = 1024 * 1024;

const MINUS = 0x2d;
const ZERO = 0x30;

export class ExpositionWriter {
  #slab = Buffer.allocUnsafe(SLAB_BYTES);
  /** Where the chunk being filled starts in the slab. */
  #start = 0;
  #position = 0;
  readonly #full: Buffer[] = [];

  /** Whether whole chunks are waiting to be taken. */
  get hasChunks(): boolean {
    return this.#full.length > 0;
  }

  /** The chunks filled so far (and, with `all`, the partial one too), in order. */
  take(all = false): Buffer[] {
    if (all) this.#seal();
    return this.#full.splice(0);
  }

  #seal(): void {
    if (this.#position > this.#start) this.#full.push(this.#slab.subarray(this.#start, this.#position));
    this.#start = this.#position;
  }

  /** Makes room for `bytes` more; seals the chunk once it is full. */
  #room(bytes: number): void {
    if (this.#position - this.#start >= CHUNK_BYTES) this.#seal();
    if (this.#position + bytes <= this.#slab.length) return;
    this.#seal();
    this.#slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, bytes));
    this.#start = 0;
    this.#position = 0;
  }

  /** Appends pre-encoded bytes. */
  bytes(bytes: Uint8Array): void {
    this.#room(bytes.length);
    this.#slab.set(bytes, this.#position);
    this.#position += bytes.length;
  }

  /** Appends text (UTF-8). */
  text(text: string): void {
    const length = Buffer.byteLength(text);
    this.#room(length);
    this.#position += this.#slab.write(text, this.#position, length, 'utf8');
  }

  /**
   * `prefix` `labels` `suffix` ` ` `value` `\n`: one sample line, from pre-encoded parts
   * (`labels` may be empty).
   */
  line(prefix: Uint8Array, labels: Uint8Array, suffix: Uint8Array, value: number | bigint): void {
    if (typeof value === 'bigint' && !(value >= 0n && value <= 9007199254740991n)) {
      let at = this.#head(prefix, labels, suffix, 20);
      at += this.#slab.write(value.toString(), at, 'latin1');
      this.#end(at);
    } else {
      this.row(prefix, labels, suffix, Number(value));
    }
  }

  /** The same line with a number as its value. */
  row(prefix: Uint8Array, labels: Uint8Array, suffix: Uint8Array, value: number): void {
    let at = this.#head(prefix, labels, suffix, 0);
    if (Number.isSafeInteger(value)) {
      at = writeInteger(this.#slab, at, value);
    } else {
      at += this.#slab.write(formatValue(value), at, 'latin1');
    }
    this.#end(at);
  }

  /** The same line with the u64 `high * 2^32 + low` as its value, exact, without a BigInt. */
  rowU64(prefix: Uint8Array, labels: Uint8Array, suffix: Uint8Array, low: number, high: number): void {
    this.#end(writeU64(this.#slab, this.#head(prefix, labels, suffix, 0), low, high));
  }

  /** Writes `prefix labels suffix ` with room after it for the value; returns where the value goes. */
  #head(prefix: Uint8Array, labels: Uint8Array, suffix: Uint8Array, extra: number): number {
    // 40 bytes covers a space, a newline and any number: an integer below 2^64 in decimal, or
    // a float as String() writes it (at most 24 characters).
    this.#room(prefix.length + labels.length + suffix.length + 40 + extra);
    const buffer = this.#slab;
    let at = this.#position;
    buffer.set(prefix, at);
    at += prefix.length;
    buffer.set(labels, at);
    at += labels.length;
    if (suffix.length !== 0) {
      buffer.set(suffix, at);
      at += suffix.length;
    }
    buffer[at++] = 0x20;
    return at;
  }

  #end(at: number): void {
    this.#slab[at++] = 0x0a;
    this.#position = at;
    if (at - this.#start >= CHUNK_BYTES) this.#seal();
  }
}

/** Writes a safe integer in decimal at `at`; returns the position after it. */
function writeInteger(buffer: Buffer, at: number, value: number): number {
  if (value < 0) {
    buffer[at++] = MINUS;
    value = -value;
  }
  if (value < 10) {
    buffer[at] = ZERO + value;
    return at + 1;
  }
  let digits = 1;
  for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  let end = at + digits;
  for (let rest = value; end > at; rest = Math.floor(rest / 10)) buffer[--end] = ZERO + (rest % 10);
  return at + digits;
}

/** A sample value as the text format writes it (Go's strconv for floats, ±Inf, NaN). */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}
