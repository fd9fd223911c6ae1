// The native connection stream's resources: what a batch holds, when the file is closed, and
// how it answers after the end. Run against saved tables, through the addon itself.
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { nativeAddon } from '../../lib/native';
import { HEADER, kernelTable, randomConnections } from './connections-kernel-format';

interface NativeBatch {
  length: number;
  done: boolean;
  clientAddress: Uint8Array;
}
interface NativeStream {
  read(batchSize: number): Promise<NativeBatch>;
  close(): void;
}
type StreamClass = new (request: object) => NativeStream;

const addon = nativeAddon() as { ConnectionStream: StreamClass; IpvsHandle: { open(path?: unknown): Promise<unknown> } };
const dir = mkdtempSync(path.join(tmpdir(), 'ipvs-stream-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const small = path.join(dir, 'small.txt');
writeFileSync(small, kernelTable(randomConnections(3, 5)));
const large = path.join(dir, 'large.txt');
writeFileSync(large, kernelTable(randomConnections(20_000, 6)));

function open(file: string): NativeStream {
  return new addon.ConnectionStream({ netns: '', path: file, sync: false, strict: false });
}

/** How many of this process's descriptors are open on `file`. */
function descriptorsOn(file: string): number {
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === file) count++;
    } catch {
      // closed while we looked
    }
  }
  return count;
}

describe('the native connection stream', () => {
  it('read() after the end resolves done, with no rows, again and again', async () => {
    const stream = open(small);
    const first = await stream.read(10);
    expect(first).toMatchObject({ length: 3, done: true });
    for (let i = 0; i < 3; i++) expect(await stream.read(10)).toMatchObject({ length: 0, done: true });
    stream.close();
    expect(await stream.read(10)).toMatchObject({ length: 0, done: true });
  });

  it('closes the file as soon as the table is exhausted', async () => {
    const stream = open(large);
    expect((await stream.read(1000)).done).toBe(false);
    expect(descriptorsOn(large)).toBe(1);
    let batch: NativeBatch;
    do batch = await stream.read(7000);
    while (!batch.done);
    expect(descriptorsOn(large)).toBe(0);
  });

  it('closes the file at close(), and after a read in flight when close() comes during it', async () => {
    const idle = open(large);
    await idle.read(10);
    expect(descriptorsOn(large)).toBe(1);
    idle.close();
    expect(descriptorsOn(large)).toBe(0);

    const busy = open(large);
    await busy.read(10);
    const pending = busy.read(20_000);
    busy.close();
    const batch = await pending;
    expect(batch.done).toBe(true);
    expect(descriptorsOn(large)).toBe(0);
    expect(await busy.read(10)).toMatchObject({ length: 0, done: true });
  });

  it('closes the file when a read fails', async () => {
    const directory = path.join(dir, 'a-directory');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(directory);
    const stream = open(directory);
    await expect(stream.read(10)).rejects.toMatchObject({ errno: 21 });  // EISDIR
    expect(descriptorsOn(directory)).toBe(0);
    expect(await stream.read(10)).toMatchObject({ length: 0, done: true });
  });

  it('a batch holds only the rows it has, whatever its batch size', async () => {
    const before = process.memoryUsage().external;
    const held: NativeBatch[] = [];
    for (let i = 0; i < 20; i++) {
      const stream = open(small);
      held.push(await stream.read(1_000_000));
      stream.close();
    }
    const grown = process.memoryUsage().external - before;
    expect(held.every((b) => b.length === 3 && b.clientAddress.byteLength === 48)).toBe(true);
    // Reserving a million rows per batch would be about 40 MiB each.
    expect(grown).toBeLessThan(4 * 1024 * 1024);
  });

  it('a header-only table ends at once', async () => {
    const file = path.join(dir, 'empty.txt');
    writeFileSync(file, HEADER);
    const stream = open(file);
    expect(await stream.read(5)).toMatchObject({ length: 0, done: true });
    expect(descriptorsOn(file)).toBe(0);
  });
});

describe('the native IpvsHandle.open', () => {
  it('rejects a namespace path that is not a string with a TypeError, before any I/O', () => {
    for (const bad of [42, null, {}, ['/run/netns/x']]) {
      expect(() => addon.IpvsHandle.open(bad)).toThrow(TypeError);
      expect(() => addon.IpvsHandle.open(bad)).toThrow(/netnsPath must be a string/);
    }
  });
});
