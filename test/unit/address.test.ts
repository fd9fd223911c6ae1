import { describe, expect, it } from 'vitest';

import { canonicalAddress, decodeAddress, encodeAddress, familyOf } from '../../lib/address';

const hex = (address: string): string => encodeAddress(address).toString('hex');

describe('familyOf', () => {
  it.each([
    ['10.0.0.1', 'inet'],
    ['0.0.0.0', 'inet'],
    ['255.255.255.255', 'inet'],
    ['::', 'inet6'],
    ['::1', 'inet6'],
    ['2001:db8::1', 'inet6'],
    ['FE80::1', 'inet6'],
    ['::ffff:10.0.0.1', 'inet6'],
    ['1:2:3:4:5:6:7:8', 'inet6'],
  ] as const)('%s is %s', (address, family) => {
    expect(familyOf(address)).toBe(family);
  });

  it.each([
    '', 'localhost', '10.0.0', '10.0.0.256', '010.0.0.1', ' 10.0.0.1', '10.0.0.1 ', '1::2::3',
    '1:2:3:4:5:6:7:8:9', '::ffff:10.0.0.256', '2001:db8::g',
    // node:net accepts zones, IPVS cannot carry them
    'fe80::1%eth0', 'fe80::1%25',
  ])('%j is not an address', (address) => {
    expect(familyOf(address)).toBeUndefined();
  });
});

describe('encodeAddress', () => {
  it('puts IPv4 in the first 4 of 16 bytes (union nf_inet_addr)', () => {
    expect(hex('10.1.2.3')).toBe('0a010203' + '00'.repeat(12));
    expect(hex('255.255.255.255')).toBe('ffffffff' + '00'.repeat(12));
  });

  it.each([
    ['::', '00'.repeat(16)],
    ['::1', '00'.repeat(15) + '01'],
    ['1::', '0001' + '00'.repeat(14)],
    ['2001:db8::1', '20010db8' + '00'.repeat(11) + '01'],
    ['2001:DB8:0:0:1:0:0:1', '20010db8000000000001000000000001'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
    ['1:0:0:2::3', '00010000000000020000000000000003'],
    ['fe80::abcd:ef01', 'fe80' + '00'.repeat(10) + 'abcdef01'],
    // embedded IPv4
    ['::ffff:10.0.0.1', '00'.repeat(10) + 'ffff0a000001'],
    ['::10.0.0.1', '00'.repeat(12) + '0a000001'],
    ['1:2:3:4:5:6:1.2.3.4', '00010002000300040005000601020304'],
    ['64:ff9b::192.0.2.33', '0064ff9b' + '00'.repeat(8) + 'c0000221'],
  ])('%s', (address, bytes) => {
    expect(hex(address)).toBe(bytes);
  });
});

describe('decodeAddress', () => {
  const v6 = (bytes: string): string => decodeAddress(Buffer.from(bytes, 'hex'), 'inet6');

  it('decodes IPv4 from the first 4 bytes and ignores the rest', () => {
    expect(decodeAddress(Buffer.from('c0a80101' + 'ff'.repeat(12), 'hex'), 'inet')).toBe('192.168.1.1');
  });

  it.each([
    // RFC 5952 4.2.1: the longest run of zero groups is compressed
    ['00'.repeat(16), '::'],
    ['00'.repeat(15) + '01', '::1'],
    ['0001' + '00'.repeat(14), '1::'],
    ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
    // 4.2.2: a single zero group is not compressed
    ['20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'],
    // 4.2.3: of equal runs, the first is compressed
    ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
    ['00010000000000020000000000000003', '1:0:0:2::3'],
    ['00010000000200000000000000000003', '1:0:2::3'],
    // 4.1 and 4.3: no leading zeros, lower case
    ['20010DB800AB00000000000000000CDE', '2001:db8:ab::cde'],
    ['00010002000300040005000600070008', '1:2:3:4:5:6:7:8'],
    // 5: IPv4-mapped addresses in mixed notation
    ['00'.repeat(10) + 'ffff0a000001', '::ffff:10.0.0.1'],
    ['00'.repeat(10) + 'ffff00000000', '::ffff:0.0.0.0'],
    // not mapped: hexadecimal
    ['00'.repeat(12) + '0a000001', '::a00:1'],
    ['0064ff9b' + '00'.repeat(8) + 'c0000221', '64:ff9b::c000:221'],
    ['00'.repeat(8) + 'ffff0000' + '0a000001', '::ffff:0:a00:1'],
  ])('%s -> %s', (bytes, text) => {
    expect(v6(bytes)).toBe(text);
  });
});

describe('canonicalAddress', () => {
  it.each([
    ['10.0.0.1', '10.0.0.1'],
    ['2001:0DB8:0000::0001', '2001:db8::1'],
    ['::FFFF:10.0.0.1', '::ffff:10.0.0.1'],
    ['::ffff:a00:1', '::ffff:10.0.0.1'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ['not an address', 'not an address'],
  ])('%s -> %s', (address, canonical) => {
    expect(canonicalAddress(address)).toBe(canonical);
  });

  it('round-trips every decoded address exactly', () => {
    const samples = ['::', '::1', '1::', 'fe80::1', '2001:db8:0:1:1:1:1:1', '::ffff:192.0.2.1', '1:0:0:2::3', 'ffff::ffff'];
    for (const text of samples) expect(decodeAddress(encodeAddress(text), 'inet6')).toBe(text);
  });
});
