// Which command lines the bin starts a read for (lib/cli/head-start.ts), and that the command
// takes it only under the same key. The host has no IPVS: every read started here fails, and
// the command then gets undefined (it reads itself and reports its own error).
import { afterEach, describe, expect, it } from 'vitest';

import { nativeAddon } from '../../../lib/native';
import { countKey, listTableKey, startHeadStart, takeHeadStart, takeHeadStartParts } from '../../../lib/cli/head-start';

const SLOT = Symbol.for('ipvs-netlink.head-start');
const held = (): { key: string } | undefined => (globalThis as Record<symbol, { key: string } | undefined>)[SLOT];

describe('head start', () => {
  afterEach(() => {
    delete (globalThis as Record<symbol, unknown>)[SLOT];
  });

  it('starts a listing for whole-table listings and saves, in the namespace the command will use', () => {
    for (const [argv, netns] of [
      [['ipvsadm', '-Ln'], ''], [['ipvsadm'], ''], [['ipvsadm', '-L', '-n', '--stats', '--exact'], ''],
      [['ipvsadm', '-Sn'], ''], [['--netns', '/run/netns/a', 'ipvsadm', '-Ln'], '/run/netns/a'],
      [['ipvsadm', '-Ln', '--netns=/run/netns/b'], '/run/netns/b'],
    ] as Array<[string[], string]>) {
      startHeadStart(argv);
      expect(held()?.key, argv.join(' ')).toBe(listTableKey(netns === '' ? undefined : netns));
    }
  });

  it('starts nothing for other command lines', () => {
    for (const argv of [
      ['ipvsadm', '-Ln', '-t', '10.0.0.1:80'], ['ipvsadm', '-Lnc'], ['ipvsadm', '-n'], ['ipvsadm', '-A', '-t', '10.0.0.1:80'],
      ['ipvsadm', '-Ln', '--netns'], ['list', '-n'], ['conns'], ['conns', '--by', 'client', '--json'],
      ['conns', '--by', 'client', '--service', 'tcp::80'], ['conns', '--by', 'nosuch'], ['restore', 'file'],
    ]) {
      startHeadStart(argv);
      expect(held(), argv.join(' ')).toBeUndefined();
    }
  });

  it('starts a count for counted conns lines, keyed by the arguments the command receives', () => {
    startHeadStart(['--netns', '/run/netns/a', 'conns', '--by', 'client', '--state', 'ESTABLISHED', '--min', '101']);
    expect(held()?.key).toBe(countKey(['--netns', '/run/netns/a', '--by', 'client', '--state', 'ESTABLISHED', '--min', '101']));
  });

  it('is taken once and only under its own key; a failed read gives undefined', async () => {
    startHeadStart(['ipvsadm', '-Ln']);
    expect(await takeHeadStart(listTableKey('/run/netns/other'))).toBeUndefined();
    expect(held()).toBeDefined();  // left for its own reader
    expect(await takeHeadStart(listTableKey(undefined))).toBeUndefined();  // no IPVS on this host
    expect(held()).toBeUndefined();
  });

  it('hands a listing over in order: the parts that came before it was taken, then the rest, then the last', async () => {
    type Slot = { key: string; answer: Promise<unknown>; parts: unknown[]; onPart?: (part: unknown) => void };
    let finish: (last: string) => void = () => {};
    const slot: Slot = { key: listTableKey(undefined), answer: new Promise((resolve) => { finish = resolve; }), parts: [] };
    // What the bin's callback does with each part (lib/cli/head-start.ts).
    const arrive = (part: string): void => {
      if (slot.onPart) slot.onPart(part);
      else slot.parts.push(part);
    };
    (globalThis as Record<symbol, Slot>)[SLOT] = slot;
    arrive('first');
    arrive('second');
    const seen: string[] = [];
    expect(await takeHeadStartParts(listTableKey('/run/netns/other'), (part: string) => seen.push(part))).toBeUndefined();
    const taken = takeHeadStartParts(listTableKey(undefined), (part: string) => seen.push(part));
    expect(seen).toEqual(['first', 'second']);
    arrive('third');
    finish('last');
    expect(await taken).toBe('last');
    expect(seen).toEqual(['first', 'second', 'third']);
    expect(held()).toBeUndefined();
  });

  it("the addon's listTableIn checks its onPart before it starts anything", async () => {
    expect(() => nativeAddon().listTableIn('', 42 as never)).toThrow(TypeError);
    expect(() => nativeAddon().listTableIn('', 42 as never)).toThrow(/onPart must be a function/);
    const parts: unknown[] = [];
    // No IPVS on this host: the listing fails, and no part arrives.
    await expect(nativeAddon().listTableIn('', (part) => parts.push(part))).rejects.toThrow();
    expect(parts).toEqual([]);
  });

  it('gives undefined for a listing that failed, whatever parts came first', async () => {
    const slot = { key: listTableKey(undefined), answer: Promise.reject(new Error('EPERM')), parts: ['first'] };
    slot.answer.catch(() => {});
    (globalThis as Record<symbol, unknown>)[SLOT] = slot;
    const seen: unknown[] = [];
    expect(await takeHeadStartParts(listTableKey(undefined), (part) => seen.push(part))).toBeUndefined();
    expect(seen).toEqual(['first']);
  });
});
