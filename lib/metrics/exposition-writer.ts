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
// The hot loops read module-level bindings of their own: compiled to CommonJS, an exported
// constant or an imported function is a property of an exports object, a property load per
// line. For the same reason they copy with `copyInto.call(buffer, …)`: on Node 20, V8's
// optimized code looks `buffer.set` up with a generic load on every call, some 70
// instructions beside the copy's 160.
const CHUNK = CHUNK_BYTES;
const writeWords = writeU64;
const copyInto = Uint8Array.prototype.set;

/** Room in a chunk's buffer past CHUNK_BYTES: the line that fills it still fits, as a rule. */
const CHUNK_CAPACITY = CHUNK + 8 * 1024;

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
  // The chunk being filled, as a plain Uint8Array: `set` on a Buffer looks the method up
  // through Buffer.prototype, a generic property load per call that cost more than the copy.
  #buffer = ExpositionWriter.#newBuffer(0);
  #position = 0;
  readonly #full: Buffer[] = [];

  static #newBuffer(bytes: number): Uint8Array {
    if (bytes > CHUNK_CAPACITY) return new Uint8Array(bytes);
    return new Uint8Array(spare.pop() ?? new ArrayBuffer(CHUNK_CAPACITY));
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
    this.#full.push(Buffer.from(this.#buffer.buffer, this.#buffer.byteOffset, this.#position));
    this.#buffer = ExpositionWriter.#newBuffer(bytes);
    this.#position = 0;
  }

  /** Makes room for `bytes` more; seals the chunk once it is full. */
  #room(bytes: number): void {
    if (this.#position >= CHUNK || this.#position + bytes > this.#buffer.length) this.#seal(bytes);
    if (this.#position + bytes > this.#buffer.length) this.#buffer = new Uint8Array(bytes);
  }

  /** Appends pre-encoded bytes. */
  bytes(bytes: Uint8Array): void {
    this.#room(bytes.length);
    copyInto.call(this.#buffer, bytes, this.#position);
    this.#position += bytes.length;
  }

  /** Appends text (UTF-8). */
  text(text: string): void {
    const length = Buffer.byteLength(text);
    this.#room(length);
    const buffer = this.#buffer;
    this.#position += Buffer.from(buffer.buffer, buffer.byteOffset, buffer.length).write(text, this.#position, length, 'utf8');
  }

  /**
   * `prefix` `labels` `suffix` ` ` `value` `\n`: one sample line, from pre-encoded parts
   * (`labels` may be empty).
   */
  line(prefix: Uint8Array, labels: Uint8Array, suffix: Uint8Array, value: number | bigint): void {
    if (typeof value === 'bigint' && !(value >= 0n && value <= 9007199254740991n)) {
      const at = this.#head(prefix, labels, suffix, 20);
      this.#end(writeLatin1(this.#buffer, at, value.toString()));
    } else {
      this.row(prefix, labels, suffix, Number(value));
    }
  }

  /** The same line with a number as its value. */
  row(prefix: Uint8Array, labels: Uint8Array, suffix: Uint8Array, value: number): void {
    const at = this.#head(prefix, labels, suffix, 0);
    this.#end(writeNumber(this.#buffer, at, value));
  }

  /** The same line with the u64 `high * 2^32 + low` as its value, exact, without a BigInt. */
  rowU64(prefix: Uint8Array, labels: Uint8Array, suffix: Uint8Array, low: number, high: number): void {
    const at = this.#head(prefix, labels, suffix, 0);  // first: it may start a new buffer
    this.#end(writeWords(this.#buffer, at, low, high));
  }

  /**
   * The lines `prefix labels[i] suffixes[i] values[i]` of rows `from` to `to - 1` (`suffixes`
   * may be left out), stopping after the line that fills a chunk; returns the row after the
   * last one written. The table families' loop: per line two copies and a number, with the
   * buffer and position in locals, and lengths read from views of one kind only (a read of
   * `.length` that sees both Buffer and Uint8Array is a generic property load, dearer than
   * the copy it sizes).
   */
  rows(prefix: Uint8Array, labels: readonly Uint8Array[], values: ArrayLike<number>, from: number, to: number,
    suffixes?: readonly Uint8Array[]): number {
    const prefixLength = prefix.length;
    let buffer = this.#buffer;
    let at = this.#position;
    for (let i = from; i < to; i++) {
      const label = labels[i]!;
      const suffix = suffixes?.[i];
      const need = prefixLength + label.length + (suffix ? suffix.length : 0) + 40;
      if (at + need > buffer.length) {
        this.#position = at;
        this.#room(need);
        buffer = this.#buffer;
        at = this.#position;
      }
      copyInto.call(buffer, prefix, at);
      at += prefixLength;
      copyInto.call(buffer, label, at);
      at += label.length;
      if (suffix) {
        copyInto.call(buffer, suffix, at);
        at += suffix.length;
      }
      buffer[at++] = 0x20;
      at = writeNumber(buffer, at, values[i]!);
      buffer[at++] = 0x0a;
      if (at >= CHUNK) {
        this.#position = at;
        this.#seal(0);
        return i + 1;
      }
    }
    this.#position = at;
    return to;
  }

  /**
   * The same with exact u64 values: row i's is `words[first + i * stride]` (low) and the word
   * after it (high).
   */
  u64Rows(prefix: Uint8Array, labels: readonly Uint8Array[], words: Uint32Array, first: number, stride: number, from: number,
    to: number): number {
    const prefixLength = prefix.length;
    let buffer = this.#buffer;
    let at = this.#position;
    for (let i = from; i < to; i++) {
      const label = labels[i]!;
      const need = prefixLength + label.length + 40;
      if (at + need > buffer.length) {
        this.#position = at;
        this.#room(need);
        buffer = this.#buffer;
        at = this.#position;
      }
      copyInto.call(buffer, prefix, at);
      at += prefixLength;
      copyInto.call(buffer, label, at);
      at += label.length;
      buffer[at++] = 0x20;
      const word = first + i * stride;
      at = writeWords(buffer, at, words[word]!, words[word + 1]!);
      buffer[at++] = 0x0a;
      if (at >= CHUNK) {
        this.#position = at;
        this.#seal(0);
        return i + 1;
      }
    }
    this.#position = at;
    return to;
  }

  /** Writes `prefix labels suffix ` with room after it for the value; returns where the value goes. */
  #head(prefix: Uint8Array, labels: Uint8Array, suffix: Uint8Array, extra: number): number {
    // 40 bytes covers a space, a newline and any number: an integer below 2^64 in decimal, or
    // a float as String() writes it (at most 24 characters).
    this.#room(prefix.length + labels.length + suffix.length + 40 + extra);
    const buffer = this.#buffer;
    let at = this.#position;
    copyInto.call(buffer, prefix, at);
    at += prefix.length;
    copyInto.call(buffer, labels, at);
    at += labels.length;
    if (suffix.length !== 0) {
      copyInto.call(buffer, suffix, at);
      at += suffix.length;
    }
    buffer[at++] = 0x20;
    return at;
  }

  #end(at: number): void {
    this.#buffer[at++] = 0x0a;
    this.#position = at;
    if (at >= CHUNK) this.#seal(0);
  }
}

/** Writes `value` as the text format does at `at`; returns the position after it. */
function writeNumber(buffer: Uint8Array, at: number, value: number): number {
  return Number.isSafeInteger(value) ? writeInteger(buffer, at, value) : writeLatin1(buffer, at, formatValue(value));
}

/** Writes ASCII `text` at `at`; returns the position after it. */
function writeLatin1(buffer: Uint8Array, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) buffer[at++] = text.charCodeAt(i);
  return at;
}

/** Writes a safe integer in decimal at `at`; returns the position after it. */
function writeInteger(buffer: Uint8Array, at: number, value: number): number {
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
