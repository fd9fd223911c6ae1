// Option validation of the connection-table API: every bad input is a TypeError or RangeError
// naming the option, thrown synchronously, before the addon is called.
import { describe, expect, it } from 'vitest';

import { countConnections, readConnectionTable, streamConnections } from '../../lib/connections';

type Case = [label: string, options: unknown, error: typeof TypeError | typeof RangeError, message: RegExp];

const readCases: Case[] = [
  ['options not an object', 'fast', TypeError, /options must be an object/],
  ['options an array', [], TypeError, /options must be an object/],
  ['unknown option', { sate: 'ESTABLISHED' }, TypeError, /unknown option 'sate'/],
  ['sync not boolean', { sync: 'yes' }, TypeError, /sync must be a boolean/],
  ['strict not boolean', { strict: 1 }, TypeError, /strict must be a boolean/],
  ['path empty', { path: '' }, TypeError, /path must be a non-empty file path/],
  ['path with NUL', { path: 'a\0b' }, TypeError, /path must be a non-empty file path/],
  ['path not string', { path: 42 }, TypeError, /path must be a non-empty file path/],
  ['state number', { state: 1 }, TypeError, /state must be a state name/],
  ['state empty array', { state: [] }, TypeError, /state must be a state name/],
  ['state element not string', { state: ['ESTABLISHED', 3] }, TypeError, /state\[1\] must be a string/],
  ['state with a space', { state: 'SYN RECV' }, RangeError, /state: 'SYN RECV' is not a connection state name/],
  ['state too long', { state: 'A'.repeat(33) }, RangeError, /is not a connection state name/],
  ['service not object', { service: 'tcp' }, TypeError, /service must be an object/],
  ['service unknown key', { service: { proto: 'tcp' } }, TypeError, /unknown option 'proto'/],
  ['service.protocol number', { service: { protocol: 6 } }, TypeError, /service.protocol must be a string/],
  ['service.protocol bad', { service: { protocol: 'tcp/ip' } }, RangeError, /service.protocol: 'tcp\/ip' is not a protocol name/],
  ['service.address bad', { service: { address: '10.0.0.256' } }, RangeError, /service.address: '10.0.0.256' is not an IPv4 or IPv6 address/],
  ['service.address not string', { service: { address: 10 } }, TypeError, /service.address must be a string/],
  ['service.port too big', { service: { port: 65536 } }, RangeError, /service.port must be an integer from 0 to 65535/],
  ['service.port fraction', { service: { port: 80.5 } }, RangeError, /service.port must be an integer/],
  ['service.port string', { service: { port: '80' } }, TypeError, /service.port must be a number/],
];

describe('readConnectionTable options', () => {
  it.each(readCases)('%s', (_label, options, errorClass, message) => {
    expect(() => readConnectionTable(undefined, options as never)).toThrow(errorClass);
    expect(() => readConnectionTable(undefined, options as never)).toThrow(message);
  });

  it('rejects a bad namespace path', () => {
    expect(() => readConnectionTable('' as never)).toThrow(/netnsPath must be a non-empty string or undefined/);
    expect(() => readConnectionTable(5 as never)).toThrow(TypeError);
  });
});

describe('streamConnections options', () => {
  it.each(readCases)('%s', (_label, options, errorClass, message) => {
    expect(() => streamConnections(undefined, options as never)).toThrow(errorClass);
    expect(() => streamConnections(undefined, options as never)).toThrow(message);
  });

  it.each([
    [{ batchSize: 0 }, RangeError, /batchSize must be an integer from 1 to 1000000/],
    [{ batchSize: 2_000_000 }, RangeError, /batchSize must be an integer/],
    [{ batchSize: '10' }, TypeError, /batchSize must be a number/],
  ] as const)('batchSize %j', (options, errorClass, message) => {
    expect(() => streamConnections(undefined, options as never)).toThrow(errorClass);
    expect(() => streamConnections(undefined, options as never)).toThrow(message);
  });
});

describe('countConnections options', () => {
  it.each(readCases)('%s', (_label, options, errorClass, message) => {
    const withBy = typeof options === 'object' && options !== null && !Array.isArray(options) ? { by: 'client', ...options } : options;
    expect(() => countConnections(undefined, withBy as never)).toThrow(errorClass);
    expect(() => countConnections(undefined, withBy as never)).toThrow(message);
  });

  it.each([
    [{}, TypeError, /by must be one of client, destination, service, state/],
    [{ by: 'clients' }, RangeError, /by must be one of client, destination, service, state, got 'clients'/],
    [{ by: 1 }, TypeError, /by must be one of/],
    [{ by: 'client', minCount: -1 }, RangeError, /minCount must be an integer from 0/],
    [{ by: 'client', minCount: 1.5 }, RangeError, /minCount must be an integer/],
    [{ by: 'client', minCount: '100' }, TypeError, /minCount must be a number/],
    [{ by: 'client', top: 0 }, RangeError, /top must be an integer from 1/],
    [{ by: 'client', top: Number.NaN }, RangeError, /top must be an integer/],
    [{ by: 'client', batchSize: 10 }, TypeError, /unknown option 'batchSize'/],
  ] as const)('%j', (options, errorClass, message) => {
    expect(() => countConnections(undefined, options as never)).toThrow(errorClass);
    expect(() => countConnections(undefined, options as never)).toThrow(message);
  });

  it('throws for a missing options object', () => {
    expect(() => countConnections(undefined, undefined as never)).toThrow(/options must be an object/);
  });
});
