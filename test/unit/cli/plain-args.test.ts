// The command lines `restore` and `conns` read without commander mean what commander reads
// them as; anything else is left to commander (its --help and its messages).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import * as conns from '../../../lib/cli/conns';
import * as io from '../../../lib/cli/io';
import * as restore from '../../../lib/cli/restore';

/** commander's reading of argv, its output swallowed. */
async function quietly<T>(read: () => Promise<T>): Promise<T> {
  const restoreOutput = io.redirectOutput({ stdout: () => {}, stderr: () => {} });
  try {
    return await read();
  } finally {
    restoreOutput();
  }
}

const defined = (value: object): object => Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));

describe('command lines read without commander', () => {
  it('restore: the same file, namespace and --dry-run as commander', async () => {
    const word = fc.constantFrom('--dry-run', '--netns', '/run/netns/lb', '--netns=/run/netns/x', 'rules.txt', '-', 'other', '--netns=', '-h', '--help', '--', '-x');
    await fc.assert(fc.asyncProperty(fc.array(word, { maxLength: 5 }), async (argv) => {
      const plain = restore.plainArgs(argv);
      if (plain === undefined) return;
      const full = await quietly(() => restore.commanderArgs([...argv]));
      expect(typeof full).toBe('object');
      expect(defined(plain)).toEqual(defined({ ...(full as object), dryRun: (full as { dryRun: boolean }).dryRun }));
    }), { numRuns: 500 });
    expect(restore.plainArgs(['--dry-run', 'rules.txt'])).toEqual({ file: 'rules.txt', netns: undefined, dryRun: true });
    expect(restore.plainArgs(['--help'])).toBeUndefined();
  });

  it('conns: the same options as commander', async () => {
    const word = fc.constantFrom('--by', 'client', 'service', 'nosuch', '--state', 'ESTABLISHED', 'SYN_RECV', '--min', '--top', '101', '0', '1x',
      '9007199254740993', '--json', '--sync', '--resolve', '--service', 'tcp:10.0.0.1:80', '--netns', '/run/netns/lb', '--by=destination',
      '--min=5', '--json=1', '-h', '--help', '--', '-1');
    await fc.assert(fc.asyncProperty(fc.array(word, { maxLength: 8 }), async (argv) => {
      const plain = conns.plainArgs(argv);
      if (plain === undefined) return;
      const full = await quietly(() => conns.commanderArgs([...argv]));
      expect(typeof full).toBe('object');
      expect(defined(plain)).toEqual(defined(full as object));
    }), { numRuns: 1000 });
    expect(conns.plainArgs(['--by', 'client', '--state', 'ESTABLISHED', '--min', '101']))
      .toEqual({ by: 'client', state: ['ESTABLISHED'], min: 101 });
    expect(conns.plainArgs(['--by', 'nosuch'])).toBeUndefined();
  });
});
