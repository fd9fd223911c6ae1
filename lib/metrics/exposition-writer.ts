// Writes exposition text straight into fixed-size buffers: a 1,000 × 10 table is some 200,000
// lines (30 MB), and building them as JavaScript strings left most of a scrape's time to the
// garbage collector. Here a line is two or three copies of pre-encoded bytes and a number
// written in place, with no allocation; full chunks are handed out for the response, so that
// the renderer can yield to the event loop between them, and their buffers come back for the
// next chunks once the socket has taken them (recycleChunk).
import { writeU64 } from '../table-view';

/**
 * Bytes per chunk handed out, each one write to the socket: small enough that filling and
 * sending one is a short slice of the event loop, large enough that the per-write costs (a
 * system call, an HTTP chunk, a wait for 'drain') stay small beside the 30 MB of a scrape.
 */
export const CHUNK_BYTES = 128 * 1024;

/** Room in a chunk's buffer past CHUNK_BYTES: the line that fills it still fits, as a rule. */
const CHUNK_CAPACITY = CHUNK_BYTES + 8 * 1024;

/**
 * Chunk buffers handed back by {@link recycleChunk} once written to the socket: a scrape then
 * reuses the same few buffers rather than allocating 30 MB of them, which would make the
 * garbage collector pause the event loop.
 */
const spare: ArrayBuffer[] = [];
const MAX_SPARE = 16;

/** Gives a chunk from {@link ExpositionWriter.take} back for reuse, once nothing reads it any more. */
export function recycleChunk(chunk: Buffer): void {
  const buffer = chunk.buffer;
  if (buffer instanceof ArrayBuffer && chunk.byteOffset === 0 && buffer.byteLength === CHUNK_CAPACITY && spare.length < MAX_SPARE &&
    !spare.includes(buffer)) {
    spare.push(buffer);
  }
}

const MINUS = 0x2d;
const ZERO = 0x30;

export class ExpositionWriter {
  #buffer = ExpositionWriter.#newBuffer(0);
  #position = 0;
  readonly #full: Buffer[] = [];

  static #newBuffer(bytes: number): Buffer {
    if (bytes > CHUNK_CAPACITY) return Buffer.allocUnsafe(bytes);
    const reused = spare.pop();
    return reused ? Buffer.from(reused) : Buffer.from(new ArrayBuffer(CHUNK_CAPACITY));
  }

  /** Whether whole chunks are waiting to be taken. */
  get hasChunks(): boolean {
    return this.#full.length > 0;
  }

  /** The chunks filled so far (and, with `all`, the partial one too), in order. */
  take(all = false): Buffer[] {
    if (all) this.#seal(0);
    return this.#full.splice(0);
  }

  /** Hands out the chunk being filled and starts another with room for `bytes`. */
  #seal(bytes: number): void {
    if (this.#position === 0) return;
    this.#full.push(this.#buffer.subarray(0, this.#position));
    this.#buffer = ExpositionWriter.#newBuffer(bytes);
    this.#position = 0;
  }

  /** Makes room for `bytes` more; seals the chunk once it is full. */
  #room(bytes: number): void {
    if (this.#position >= CHUNK_BYTES || this.#position + bytes > this.#buffer.length) this.#seal(bytes);
    if (this.#position + bytes > this.#buffer.length) this.#buffer = Buffer.allocUnsafe(bytes);
  }

  /** Appends pre-encoded bytes. */
  bytes(bytes: Uint8Array): void {
    this.#room(bytes.length);
    this.#buffer.set(bytes, this.#position);
    this.#position += bytes.length;
  }

  /** Appends text (UTF-8). */
  text(text: string): void {
    const length = Buffer.byteLength(text);
    this.#room(length);
    this.#position += this.#buffer.write(text, this.#position, length, 'utf8');
  }

  /**
   * `prefix` `labels` `suffix` ` ` `value` `\n`: one sample line, from pre-encoded parts
   * (`labels` may be empty).
   */
  line(prefix: Uint8Array, labels: Uint8Array, suffix: Uint8Array, value: number | bigint): void {
    if (typeof value === 'bigint' && !(value >= 0n && value <= 9007199254740991n)) {
      let at = this.#head(prefix, labels, suffix, 20);
      at += this.#buffer.write(value.toString(), at, 'latin1');
      this.#end(at);
    } else {
      this.row(prefix, labels, suffix, Number(value));
    }
  }

  /** The same line with a number as its value. */
  row(prefix: Uint8Array, labels: Uint8Array, suffix: Uint8Array, value: number): void {
    let at = this.#head(prefix, labels, suffix, 0);
    if (Number.isSafeInteger(value)) {
      at = writeInteger(this.#buffer, at, value);
    } else {
      at += this.#buffer.write(formatValue(value), at, 'latin1');
    }
    this.#end(at);
  }

  /** The same line with the u64 `high * 2^32 + low` as its value, exact, without a BigInt. */
  rowU64(prefix: Uint8Array, labels: Uint8Array, suffix: Uint8Array, low: number, high: number): void {
    const at = this.#head(prefix, labels, suffix, 0);  // first: it may start a new buffer
    this.#end(writeU64(this.#buffer, at, low, high));
  }

  /** Writes `prefix labels suffix ` with room after it for the value; returns where the value goes. */
  #head(prefix: Uint8Array, labels: Uint8Array, suffix: Uint8Array, extra: number): number {
    // 40 bytes covers a space, a newline and any number: an integer below 2^64 in decimal, or
    // a float as String() writes it (at most 24 characters).
    this.#room(prefix.length + labels.length + suffix.length + 40 + extra);
    const buffer = this.#buffer;
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
    this.#buffer[at++] = 0x0a;
    this.#position = at;
    if (at >= CHUNK_BYTES) this.#seal(0);
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
