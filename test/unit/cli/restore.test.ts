// Restore input: the fast path for the lines `ipvsadm -S` writes gives exactly what the full
// parser gives (the same request records, line numbers, errors), and takes those lines.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { IpvsadmExit } from '../../../lib/cli/ipvsadm/options';
import { parseRestoreInput, type RestorePlan } from '../../../lib/cli/ipvsadm/restore';
import { FastLine } from '../../../lib/cli/ipvsadm/restore-fast';
import { RequestWriter } from '../../../lib/records';

/** The plan as plain data, or the error that stopped it. */
async function outcome(text: string, fast: boolean): Promise<unknown> {
  let plan: RestorePlan;
  try {
    plan = await parseRestoreInput(text, { fast });
  } catch (error) {
    if (!(error instanceof IpvsadmExit)) throw error;
    return { error: { status: error.status, text: error.text, soft: error.soft, line: error.line } };
  }
  return {
    commands: plan.commands,
    steps: plan.steps.map((step) => {
      if (step.kind === 'batch') {
        return { kind: step.kind, lines: step.lines, fns: step.fns, records: [...step.requests.records()], strings: step.requests.strings };
      }
      if (step.kind === 'invalid') return { kind: step.kind, line: step.line, status: step.error.status, text: step.error.text };
      return { kind: step.kind, line: step.line, entry: step.entry };
    }),
    invalid: plan.invalid.map((step) => step.line),
  };
}

/** The words of `line` as restore input splits it: their bounds and count. */
function words(line: string): { starts: Int32Array; ends: Int32Array; count: number } {
  const starts = new Int32Array(32);
  const ends = new Int32Array(32);
  let count = 0;
  for (const match of line.matchAll(/[^ \t\r]+/g)) {
    if (match[0] === 'ipvsadm' || count === 32) continue;
    starts[count] = match.index!;
    ends[count] = match.index! + match[0].length;
    count++;
  }
  return { starts, ends, count };
}

/** Whether the fast path takes `line`. */
function fastTakes(line: string): boolean {
  const { starts, ends, count } = words(line);
  return count > 0 && new FastLine().parse(line, starts, ends, count);
}

const SAVED = [
  '-A -t 10.100.0.1:80 -s wrr',
  '-a -t 10.100.0.1:80 -r 192.168.0.10:8080 -m -w 1',
  '-a -t 10.100.0.1:80 -r 192.168.0.11:80 -g -w 0',
  '-A -u 10.0.0.2:53 -s rr -p 300',
  '-a -u 10.0.0.2:53 -r 10.1.1.1:53 -i -w 5 -x 100 -y 10',
  '-A -f 4294967295 -s mh',
  '-a -f 7 -r 10.1.1.1:0 -m -w 2147483647',
  'ipvsadm -E -t 1.2.3.4:80 -s wlc -p',
  '-e -t 1.2.3.4:80 -r 5.6.7.8:81',
];

describe('restore input, fast path', () => {
  it('takes the lines ipvsadm -S writes, and gives the full parser\'s records', async () => {
    for (const line of SAVED) {
      expect(fastTakes(line), line).toBe(true);
      // In ipvsadm -S order, one regular expression takes the whole line.
      expect(new FastLine().matchInto(`${line}\n`, 0, new RequestWriter(1)), line).toBe(line.length + 1);
    }
    const text = `${SAVED.join('\n')}\n`;
    expect(await outcome(text, true)).toEqual(await outcome(text, false));
  });

  it('leaves every other shape to the full parser', () => {
    for (const line of [
      '-A -t 10.0.0.1 -s rr', '-A -t 10.0.0.1:0 -s rr', '-A -t 010.0.0.1:80', '-A -t [::1]:80', '-A -t 10.0.0.1:http',
      '-A -t10.0.0.1:80', '-A --tcp-service 10.0.0.1:80', '-A -t 10.0.0.1:80 -s rr -s wlc', '-A -t 10.0.0.1:80 -M 255.255.255.0',
      '-A -t 10.0.0.1:80 -b sh-port', '-A -t 10.0.0.1:80 -o', '-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -g', '-A -f 5 -6',
      '-a -t 10.0.0.1:80 -r 10.0.0.2:80 -w 2147483648', '-A -t 10.0.0.1:80 -p 0', '-A -t 10.0.0.1:80 -r 10.0.0.2:80',
      '-a -t 10.0.0.1:80 -s rr -r 10.0.0.2:80', '-D -t 10.0.0.1:80', '-C', '-Ax -t 10.0.0.1:80', '-A -t 10.0.0.1:80 extra',
      '-a -t 10.0.0.1:80 -r 10.0.0.2:80 -i --tun-type gue --tun-port 6080', '-A -t 10.0.0.1:80 -s sixteen-letters!',
    ]) {
      expect(fastTakes(line), line).toBe(false);
    }
  });

  it('gives the same plan, line numbers and errors as the full parser on generated input', async () => {
    const address = fc.oneof(
      fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(65535)).map(([a, b, c, d, p]) => `${a}.${b}.${c}.${d}:${p}`),
      fc.constantFrom('10.0.0.1', '10.0.0.1:0', '010.0.0.1:80', '256.0.0.1:80', '10.0.0.1:65536', '10.0.0.1:080', '10.1:80',
        '[::1]:80', '[2001:db8::1]:443', '10.0.0.1:http', '10.0.0.1:', ':80', '-m'),
    );
    const number = fc.oneof(fc.nat(3000000).map(String), fc.constantFrom('0', '007', '2147483647', '2147483648', '-1', 'x', '1e3', '99999999999'));
    const option = fc.oneof(
      fc.tuple(fc.constantFrom('-t', '-u', '-r', '--tcp-service', '--real-server'), address).map((words) => words.join(' ')),
      fc.tuple(fc.constantFrom('-f'), number).map((words) => words.join(' ')),
      fc.tuple(fc.constantFrom('-s', '--scheduler'), fc.constantFrom('rr', 'wrr', 'wlc', 'mh', 'sh', 'x', '-m', 'abcdefghijklmnopq', 'ipvsadm')).map((w) => w.join(' ')),
      fc.tuple(fc.constantFrom('-w', '-x', '-y', '-p', '--weight'), number).map((words) => words.join(' ')),
      fc.constantFrom('-p', '-g', '-m', '-i', '-6', '-o', '-n', '-M 255.255.255.0', '-b sh-port', '--pe sip', '--tun-type gue', '--tun-port 5',
        'ipvsadm', 'extra', '-Q', '-gm', '-w', '-t'),
    );
    const command = fc.constantFrom('-A', '-E', '-a', '-e', '-a', '-a', '-D', '-d', '-C', '-Z', '--add-service', '-Ax', 'ipvsadm -A', '-L', '-h');
    // The shapes the fast path takes, options in any order, sometimes with one word changed.
    const quad = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(65535)).map(([a, b, c, d, p]) => `${a}.${b}.${c}.${d}:${p}`);
    const service = fc.oneof(fc.tuple(fc.constantFrom('-t', '-u'), quad).map((w) => w.join(' ')), fc.nat().map((m) => `-f ${m}`));
    const serviceLine = fc.tuple(fc.constantFrom('-A', '-E'), service, fc.subarray(['-s wrr', '-p', '-p 60', '-p 2678400'], { maxLength: 2 }));
    const serverLine = fc.tuple(fc.constantFrom('-a', '-e'), service, fc.tuple(fc.constant('-r'), quad).map((w) => w.join(' ')),
      fc.subarray(['-g', '-m', '-i', '-w 0', '-w 2147483647', '-x 10', '-y 5'], { maxLength: 4 }));
    // In ipvsadm -S order (the regular expressions) or shuffled (the word-by-word reader).
    const shaped = fc.tuple(fc.oneof(serviceLine, serverLine), fc.option(fc.tuple(fc.nat(20), option), { freq: 3 }), fc.boolean(),
      fc.constantFrom('', 'ipvsadm ', '  ', 'ipvsadm\t'))
      .chain(([[command, ...parts], change, inOrder, prefix]) => (inOrder ? fc.constant(parts.flat()) : fc.shuffledSubarray(parts.flat(), { minLength: parts.flat().length }))
        .map((ordered) => {
          const w = [command, ...ordered].join(' ').split(' ');
          if (change) w[change[0] % w.length] = change[1];
          return prefix + w.join(' ');
        }));
    const line = fc.oneof(
      { weight: 6, arbitrary: shaped },
      { weight: 8, arbitrary: fc.tuple(command, fc.array(option, { maxLength: 7 }), fc.constantFrom(' ', '  ', '\t', ' \r')).map(([c, o, sep]) => [c, ...o].join(sep)) },
      { weight: 1, arbitrary: fc.constantFrom('', '   ', 'ipvsadm', '\t\r') },
    );
    let taken = 0;
    let total = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 12 }), async (lines) => {
        const text = lines.join('\n');
        expect(await outcome(text, true)).toEqual(await outcome(text, false));
        total += lines.length;
        taken += lines.filter(fastTakes).length;
      }),
      { numRuns: 3000 },
    );
    // The comparison means something only if the fast path took a fair share of the lines.
    expect(taken).toBeGreaterThan(total / 20);
  });

  it('writes into a slot that a refused record left dirty', () => {
    // begin() without end(): the next record's slot is cleared before the fast path writes it.
    const writer = new RequestWriter(1);
    const base = writer.begin(1);
    writer.words.fill(0xffffffff, base, base + writer.offsets.words);
    const line = '-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m';
    const fast = new FastLine();
    const { starts, ends, count } = words(line);
    expect(fast.parse(line, starts, ends, count)).toBe(true);
    fast.write(writer);
    const clean = new RequestWriter(1);
    fast.write(clean);
    expect([...writer.records()]).toEqual([...clean.records()]);
  });
});
