// The buffer the ipvsadm listings are written into: the same text as padEnd and template strings.
import { describe, expect, it } from 'vitest';

import { TextBuffer } from '../../../lib/cli/ipvsadm/text-buffer';

describe('TextBuffer', () => {
  it('pads, writes numbers and addresses in place, and keeps non-ASCII text', () => {
    const text = new TextBuffer();
    text.padEnd('10.0.0.1:80', 28).text('|').uintPadEnd(1234, 6).text('|').uintPadEnd(7, 1).text('|').uintPadEnd(-3, 4).text('|');
    const start = text.length;
    text.uintZeroPad(5, 2).byte(0x3a).uintZeroPad(123, 2).padFrom(start, 8).text('|');
    text.ipv4(Uint8Array.from([0, 0, 192, 0, 2, 255]), 2).text('|').padEnd('héllo', 7).text('|').text('x'.repeat(40)).text('\n');
    expect(text.toString()).toBe(`${'10.0.0.1:80'.padEnd(28)}|${'1234'.padEnd(6)}|7|${'-3'.padEnd(4)}|05:123  |192.0.2.255|${'héllo'.padEnd(7)}|${'x'.repeat(40)}\n`);
  });

  it('grows past its first buffer', () => {
    const text = new TextBuffer();
    for (let i = 0; i < 20_000; i++) text.text('  -> ').uintPadEnd(i, 10).text('\n');
    const lines = text.toString().split('\n');
    expect(lines).toHaveLength(20_001);
    expect(lines[19_999]).toBe(`  -> ${'19999'.padEnd(10)}`);
  });
});
