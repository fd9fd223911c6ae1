// A listing written in one pass into one growing buffer, then printed with one write: a
// 1,000 × 10 table is 11,000 lines, and building each as padded JavaScript strings left most
// of the listing's time to the garbage collector. Widths count UTF-16 units, as padEnd does
// (the same as ipvsadm's printf widths for the ASCII it prints).

const SPACE = 0x20;
const ZERO = 0x30;

export class TextBuffer {
  #buffer: Buffer;
  #length = 0;

  /** `capacity`: the bytes to start with (it grows as needed). */
  constructor(capacity = 64 * 1024) {
    this.#buffer = Buffer.allocUnsafe(Math.max(capacity, 64));
  }

  #room(bytes: number): void {
    if (this.#length + bytes <= this.#buffer.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.#length + bytes));
    this.#buffer.copy(bigger, 0, 0, this.#length);
    this.#buffer = bigger;
  }

  /** Appends `text`. */
  text(text: string): this {
    this.#room(text.length * 3);
    if (text.length > 32) {
      this.#length += this.#buffer.write(text, this.#length, 'utf8');
      return this;
    }
    // Short text is most of a listing: copied here, which is cheaper than a call into the encoder.
    const buffer = this.#buffer;
    const start = this.#length;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c > 0x7f) {
        this.#length = start + buffer.write(text, start, 'utf8');
        return this;
      }
      buffer[start + i] = c;
    }
    this.#length = start + text.length;
    return this;
  }

  /** Appends `count` spaces. */
  spaces(count: number): this {
    if (count <= 0) return this;
    this.#room(count);
    this.#buffer.fill(SPACE, this.#length, this.#length + count);
    this.#length += count;
    return this;
  }

  /** `text`, then spaces up to `width` (text.padEnd(width)). */
  padEnd(text: string, width: number): this {
    return this.text(text).spaces(width - text.length);
  }

  /** A non-negative safe integer, then spaces up to `width` (String(n).padEnd(width)). */
  uintPadEnd(value: number, width: number): this {
    if (!Number.isSafeInteger(value) || value < 0) return this.padEnd(String(value), width);
    const digits = digitCount(value);
    this.#room(Math.max(digits, width));
    const end = this.#length + digits;
    const buffer = this.#buffer;
    for (let rest = value, at = end; at > this.#length; rest = Math.floor(rest / 10)) buffer[--at] = ZERO + (rest % 10);
    this.#length = end;
    return this.spaces(width - digits);
  }

  /** Spaces up to `width`, then a non-negative safe integer (String(n).padStart(width)). */
  uintPadStart(value: number, width: number): this {
    return this.spaces(width - digitCount(value)).uint(value);
  }

  /** The length so far, to pad from with {@link padFrom}. */
  get length(): number {
    return this.#length;
  }

  /** Spaces until what was written since `start` (ASCII) is `width` long. */
  padFrom(start: number, width: number): this {
    return this.spaces(start + width - this.#length);
  }

  /** A non-negative safe integer in decimal, zero-padded to `width` digits. */
  uintZeroPad(value: number, width: number): this {
    const digits = Math.max(digitCount(value), width);
    this.#room(digits);
    const buffer = this.#buffer;
    const end = this.#length + digits;
    for (let rest = value, at = end; at > this.#length; rest = Math.floor(rest / 10)) buffer[--at] = ZERO + (rest % 10);
    this.#length = end;
    return this;
  }

  /** An IPv4 address in dotted decimal from its 4 bytes at `offset`. */
  ipv4(bytes: Uint8Array, offset: number): this {
    return this.uint(bytes[offset]!).byte(0x2e).uint(bytes[offset + 1]!).byte(0x2e).uint(bytes[offset + 2]!).byte(0x2e).uint(bytes[offset + 3]!);
  }

  /** A non-negative safe integer in decimal. */
  uint(value: number): this {
    return this.uintZeroPad(value, 1);
  }

  /** One byte (ASCII). */
  byte(value: number): this {
    this.#room(1);
    this.#buffer[this.#length++] = value;
    return this;
  }

  /** Appends `bytes` from `start` to `end` (text this or another TextBuffer wrote). */
  append(bytes: Uint8Array, start: number, end: number): this {
    this.#room(end - start);
    this.#buffer.set(bytes.subarray(start, end), this.#length);
    this.#length += end - start;
    return this;
  }

  /** What was written, as UTF-8 bytes (a view of the buffer: valid until the next write). */
  bytes(): Uint8Array {
    return this.#buffer.subarray(0, this.#length);
  }

  toString(): string {
    return this.#buffer.toString('utf8', 0, this.#length);
  }
}

function digitCount(value: number): number {
  let digits = 1;
  for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  return digits;
}
