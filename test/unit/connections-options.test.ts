// Option validation of the connection-table API: every bad input is a TypeError or RangeError
// naming the option by its path, in the same words as the rest of the library, thrown
// synchronously, before the addon is called.
import { describe, expect, it } from 'vitest';

import {
  countConnections, countConnectionsIn, readConnectionTable, streamConnections, streamConnectionsIn,
} from '../../lib/connections';

type Case = [label: string, options: unknown, error: typeof TypeError | typeof RangeError, message: RegExp];

const readCases: Case[] = [
  ['options not an object', 'fast', TypeError, /^options must be an object, got "fast"$/],
  ['options an array', [], TypeError, /^options must be an object, got an array$/],
  ['unknown option', { sate: 'ESTABLISHED' }, TypeError, /^options\.sate is not a known option \(known: netns, sync, path/],
  ['sync not boolean', { sync: 'yes' }, TypeError, /^options\.sync must be a boolean, got "yes"$/],
  ['strict not boolean', { strict: 1 }, TypeError, /^options\.strict must be a boolean, got 1$/],
  ['path empty', { path: '' }, TypeError, /^options\.path must be a non-empty path$/],
  ['path with NUL', { path: 'a\0b' }, TypeError, /^options\.path must be a non-empty path$/],
  ['path not string', { path: 42 }, TypeError, /^options\.path must be a string, got 42$/],
  ['netns empty', { netns: '' }, TypeError, /^options\.netns must be a non-empty path$/],
  ['netns not string', { netns: 5 }, TypeError, /^options\.netns must be a string, got 5$/],
  ['state number', { state: 1 }, TypeError, /^options\.state must be a state name or a non-empty array of them/],
  ['state empty array', { state: [] }, TypeError, /^options\.state must be a state name or a non-empty array/],
  ['state element not string', { state: ['ESTABLISHED', 3] }, TypeError, /^options\.state\[1\] must be a string, got 3$/],
  ['state with a space', { state: 'SYN RECV' }, RangeError, /^options\.state must be a connection state name, got "SYN RECV"$/],
  ['state too long', { state: ['A'.repeat(33)] }, RangeError, /^options\.state\[0\] must be a connection state name/],
  ['service not object', { service: 'tcp' }, TypeError, /^options\.service must be an object, got "tcp"$/],
  ['service unknown key', { service: { proto: 'tcp' } }, TypeError, /^options\.service\.proto is not a known option/],
  ['service.protocol number', { service: { protocol: 6 } }, TypeError, /^options\.service\.protocol must be a string, got 6$/],
  ['service.protocol bad', { service: { protocol: 'tcp/ip' } }, RangeError, /^options\.service\.protocol must be a protocol name/],
  ['service.address bad', { service: { address: '10.0.0.256' } }, RangeError, /^options\.service\.address must be an IPv4 or IPv6 address, got "10\.0\.0\.256"$/],
  ['service.address zone', { service: { address: 'fe80::1%eth0' } }, RangeError, /^options\.service\.address must be an IPv4 or IPv6 address/],
  ['service.address not string', { service: { address: 10 } }, TypeError, /^options\.service\.address must be a string, got 10$/],
  ['service.port too big', { service: { port: 65536 } }, RangeError, /^options\.service\.port must be between 0 and 65535, got 65536$/],
  ['service.port fraction', { service: { port: 80.5 } }, RangeError, /^options\.service\.port must be an integer, got 80\.5$/],
  ['service.port string', { service: { port: '80' } }, TypeError, /^options\.service\.port must be an integer, got "80"$/],
];

describe('readConnectionTable options', () => {
  it.each(readCases)('%s', (_label, options, errorClass, message) => {
    expect(() => readConnectionTable(options as never)).toThrow(errorClass);
    expect(() => readConnectionTable(options as never)).toThrow(message);
  });
});

describe('streamConnections options', () => {
  it.each(readCases)('%s', (_label, options, errorClass, message) => {
    expect(() => streamConnections(options as never)).toThrow(errorClass);
    expect(() => streamConnections(options as never)).toThrow(message);
  });

  it.each([
    [{ batchSize: 0 }, RangeError, /^options\.batchSize must be between 1 and 1000000, got 0$/],
    [{ batchSize: 2_000_000 }, RangeError, /^options\.batchSize must be between 1 and 1000000/],
    [{ batchSize: '10' }, TypeError, /^options\.batchSize must be an integer, got "10"$/],
  ] as const)('batchSize %j', (options, errorClass, message) => {
    expect(() => streamConnections(options as never)).toThrow(errorClass);
    expect(() => streamConnections(options as never)).toThrow(message);
  });
});

describe('countConnections options', () => {
  it.each(readCases)('%s', (_label, options, errorClass, message) => {
    const withBy = typeof options === 'object' && options !== null && !Array.isArray(options) ? { by: 'client', ...options } : options;
    expect(() => countConnections(withBy as never)).toThrow(errorClass);
    expect(() => countConnections(withBy as never)).toThrow(message);
  });

  it.each([
    [{}, TypeError, /^options\.by must be a string, got undefined$/],
    [{ by: 'clients' }, RangeError, /^options\.by must be one of 'client', 'destination', 'service', 'state', got "clients"$/],
    [{ by: 1 }, TypeError, /^options\.by must be a string/],
    [{ by: 'client', minCount: -1 }, RangeError, /^options\.minCount must be between 0 and/],
    [{ by: 'client', minCount: 1.5 }, RangeError, /^options\.minCount must be an integer, got 1\.5$/],
    [{ by: 'client', minCount: '100' }, TypeError, /^options\.minCount must be an integer, got "100"$/],
    [{ by: 'client', top: 0 }, RangeError, /^options\.top must be between 1 and/],
    [{ by: 'client', top: Number.NaN }, RangeError, /^options\.top must be an integer, got NaN$/],
    [{ by: 'client', batchSize: 10 }, TypeError, /^options\.batchSize is not a known option/],
  ] as const)('%j', (options, errorClass, message) => {
    expect(() => countConnections(options as never)).toThrow(errorClass);
    expect(() => countConnections(options as never)).toThrow(message);
  });

  it('throws for a missing options object', () => {
    expect(() => countConnections(undefined as never)).toThrow(/^options must be an object, got undefined$/);
  });
});

describe('the handle methods', () => {
  // A handle's namespace is its own: `netns` is not an option of its readers.
  it('reject a netns option', () => {
    expect(() => streamConnectionsIn('/run/netns/lb', { netns: '/run/netns/x' })).toThrow(
      /^options\.netns is not a known option \(known: sync, path/,
    );
    expect(() => countConnectionsIn('/run/netns/lb', { by: 'client', netns: '/run/netns/x' })).toThrow(
      /^options\.netns is not a known option/,
    );
  });
});
