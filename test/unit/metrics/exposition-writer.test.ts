// The byte writer behind /metrics: numbers as the text format writes them, and chunking
// that never changes the concatenated text.
import { describe, expect, it } from 'vitest';

import { CHUNK_BYTES, ExpositionWriter, recycleChunk } from '../../../lib/metrics/exposition-writer';

const bytes = (text: string): Uint8Array => Buffer.from(text, 'utf8');
const joined = (writer: ExpositionWriter): string => Buffer.concat(writer.take(true)).toString('utf8');

describe('ExpositionWriter', () => {
  it('writes integers, bigints beyond 2^53, negatives, floats, NaN and infinities as String() and prom-client do', () => {
    const writer = new ExpositionWriter();
    const name = bytes('m');
    const labels = bytes('{a="x"');
    const close = bytes('}');
    const values: Array<number | bigint> = [0, 7, 10, 1234567890, -42, 0.25, 1e21, NaN, Infinity, -Infinity, 9007199254740993n, 18446744073709551615n, 5n];
    for (const value of values) writer.line(name, labels, close, value);
    expect(joined(writer)).toBe(values.map((v) => {
      const text = typeof v === 'bigint' ? v.toString() : Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v);
      return `m{a="x"} ${text}\n`;
    }).join(''));
  });

  it('hands out chunks of at most CHUNK_BYTES and a line, whose concatenation is the text, across slabs', () => {
    const writer = new ExpositionWriter();
    const labels = bytes(`{l="${'é'.repeat(40)}"`);
    let expected = '';
    const chunks: Buffer[] = [];
    for (let i = 0; i < 100_000; i++) {
      writer.line(bytes('metric_name'), labels, bytes('}'), i);
      expected += `metric_name{l="${'é'.repeat(40)}"} ${i}\n`;
      if (writer.hasChunks) chunks.push(...writer.take());
    }
    writer.text('# end\n');
    expected += '# end\n';
    chunks.push(...writer.take(true));
    expect(chunks.length).toBeGreaterThanOrEqual(Math.floor(Buffer.byteLength(expected) / (CHUNK_BYTES + 200)));
    expect(chunks.length).toBeGreaterThan(10);
    for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(CHUNK_BYTES + 200);
    expect(Buffer.concat(chunks).toString('utf8')).toBe(expected);
  });

  it('writes u64 values from two words and numbers from rows across chunk boundaries, recycled buffers included', () => {
    let expected = '';
    const chunks: Buffer[] = [];
    const labels = bytes('{real_address="10.0.0.1",real_port="80"}');
    for (let round = 0; round < 2; round++) {
      const writer = new ExpositionWriter();
      for (let i = 0; i < 10_000; i++) {
        // Text (a family's # lines) may leave a chunk full: the next line then starts a new one.
        if (i % 31 === 0) {
          const help = `# HELP family_${i} ${'h'.repeat(3000)}\n`;
          writer.text(help);
          expected += help;
        }
        const high = i % 7 === 0 ? 0xffffffff : i % 3;
        const low = (i * 2654435761) >>> 0;
        writer.rowU64(bytes('u64_total'), labels, bytes(''), low, high);
        expected += `u64_total{real_address="10.0.0.1",real_port="80"} ${(BigInt(high) << 32n) | BigInt(low)}\n`;
        writer.row(bytes('g'), labels.subarray(0, labels.length - 1), bytes(',x="y"}'), i / 4);
        expected += `g{real_address="10.0.0.1",real_port="80",x="y"} ${i / 4}\n`;
        if (writer.hasChunks) chunks.push(...writer.take());
      }
      chunks.push(...writer.take(true));
      // The first round's buffers come back, as the server gives them back once written.
      if (round === 0) {
        const text = Buffer.concat(chunks).toString('utf8');
        for (const chunk of chunks) recycleChunk(chunk);
        chunks.length = 0;
        expect(text).toBe(expected);
        expected = '';
      }
    }
    expect(Buffer.concat(chunks).toString('utf8')).toBe(expected);
  });

  it('writes whole families (rows, u64Rows) as the same lines one at a time, stopping at each full chunk', () => {
    const rowCount = 9_000;
    const labels = Array.from({ length: rowCount }, (_, i) => new Uint8Array(bytes(`{service="tcp 10.0.${i >> 8}.${i & 255}:80",server="${'x'.repeat(i % 97)}"`)));
    const closed = labels.map((label) => new Uint8Array([...label, 0x7d]));
    const suffixes = labels.map((_, i) => new Uint8Array(bytes(i % 3 === 0 ? ',forward="route"}' : ',forward="masq"}')));
    const values = Float64Array.from({ length: rowCount }, (_, i) => (i % 5 === 0 ? i / 8 : i % 7 === 0 ? 2 ** 53 + 2 : i * 1000));
    const words = new Uint32Array(rowCount * 3);
    for (let i = 0; i < rowCount; i++) {
      words[i * 3 + 1] = (i * 2654435761) >>> 0;
      words[i * 3 + 2] = i % 4 === 0 ? 0xffffffff : i % 3;
    }
    const name = new Uint8Array(bytes('family_name'));
    const oneByOne = new ExpositionWriter();
    const bulk = new ExpositionWriter();
    const chunks: Buffer[] = [];
    let stops = 0;
    for (const [write, step] of [
      [(i: number) => oneByOne.row(name, closed[i]!, bytes(''), values[i]!), (i: number) => bulk.rows(name, closed, values, i, rowCount)],
      [(i: number) => oneByOne.row(name, labels[i]!, suffixes[i]!, values[i]!), (i: number) => bulk.rows(name, labels, values, i, rowCount, suffixes)],
      [(i: number) => oneByOne.rowU64(name, closed[i]!, bytes(''), words[i * 3 + 1]!, words[i * 3 + 2]!),
        (i: number) => bulk.u64Rows(name, closed, words, 1, 3, i, rowCount)],
    ] as const) {
      for (let i = 0; i < rowCount; i++) write(i);
      for (let i = 0; i < rowCount;) {
        const next = step(i);
        expect(next).toBeGreaterThan(i);
        if (next < rowCount) {
          expect(bulk.hasChunks).toBe(true);
          stops++;
        }
        chunks.push(...bulk.take());
        i = next;
      }
    }
    chunks.push(...bulk.take(true));
    expect(stops).toBeGreaterThan(10);
    for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(CHUNK_BYTES + 300);
    expect(Buffer.concat(chunks).equals(Buffer.concat(oneByOne.take(true)))).toBe(true);
  });
});
