// Every invalid input of the shared table (test/invalid-inputs.ts), against a real table: the
// error is thrown and the kernel table — as ipvsadm sees it, and as the API reads it — is
// exactly what it was.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Ipvs } from '../../lib/index';
import { FIXTURE_COMMANDS, INVALID_INPUTS, S4, S6, describeInput, invoke, namesField } from '../invalid-inputs';
import { saveLines, withoutStats } from './api-helpers';
import { createNetns, type TestNetns } from './helpers';
import { NetnsShell } from './reconcile/shell';

describe('invalid inputs leave the kernel table unchanged', () => {
  let ns: TestNetns;
  let shell: NetnsShell;
  let ipvs: Ipvs;
  let saved: string[];
  let thresholds: string;
  let snapshot: unknown;

  // ipvsadm runs after every call: from a shell kept open in the namespace.
  const save = async (): Promise<string[]> => saveLines(await shell.run('ipvsadm -S -n'));
  const listing = (): string => ns.run('ipvsadm', ['-L', '-n', '--thresholds', '--persistent-conn']);
  async function read(): Promise<unknown> {
    const services = (await ipvs.listServices()).map(withoutStats);
    const destinations = await Promise.all((await ipvs.listServices()).map(async (s) => (await ipvs.listDestinations(s)).map(withoutStats)));
    return { services, destinations };
  }

  beforeAll(async () => {
    ns = createNetns('inval');
    ns.run('ipvsadm', ['-R'], { input: `${FIXTURE_COMMANDS.join('\n')}\n` });
    ipvs = await Ipvs.open({ netns: ns.path });
    shell = new NetnsShell(ns);
    saved = await save();
    thresholds = listing();
    snapshot = await read();
    expect(saved).toEqual(saveLines(FIXTURE_COMMANDS.join('\n')));
  });
  afterAll(async () => {
    await ipvs?.close();
    shell?.close();
    ns?.remove();
  });

  it.each(INVALID_INPUTS.map((input, i) => [describeInput(input, i), input] as const))('%s', async (_title, input) => {
    const error = await invoke(Ipvs, ipvs, input).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(input.error);
    expect((error as Error).constructor).toBe(input.error);
    expect(namesField((error as Error).message, input.field), (error as Error).message).toBe(true);
    expect(await save()).toEqual(saved);
  });

  it('and afterwards every field of the table, thresholds included, is as it was', async () => {
    expect(listing()).toBe(thresholds);
    expect(await read()).toEqual(snapshot);
  });

  it('while valid versions of the same calls do change it (the table is not read-only)', async () => {
    await ipvs.editService({ ...S6, scheduler: 'rr', persistent: 301, netmask: 64 });
    await ipvs.editDestination(S4, { address: '10.0.1.1', port: 8080, forward: 'masq', weight: 6 });
    const changed = await save();
    expect(changed).not.toEqual(saved);
    expect(changed).toContain('-A -t [2001:db8::1]:443 -s rr -p 301 -M 64');
    expect(changed).toContain('-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 6');
  });
});
