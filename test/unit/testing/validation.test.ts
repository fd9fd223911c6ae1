// The kit checks its arguments before running any command (no root needed for these).
import { describe, expect, it } from 'vitest';

import { CommandError, Netns, createNetns, httpClient, tcpClient, topology, veth, withNetns } from '../../../lib/testing';
import { runCommand, runCommandSync } from '../../../lib/testing/command';

const ns = new Netns('never-created');

describe('argument checks come before any command', () => {
  it('namespaces', async () => {
    await expect(createNetns({ prefix: 'has space' })).rejects.toThrow(/options.prefix must be 1-20 letters/);
    await expect(createNetns({ prefix: 'x'.repeat(21) })).rejects.toThrow(TypeError);
    await expect(withNetns('nope' as never)).rejects.toThrow('fn must be a function');
    expect(() => ns.execSync([])).toThrow('command must be a non-empty string or a non-empty array of strings');
    await expect(ns.exec('true', { timeoutMs: 0 })).rejects.toThrow(RangeError);
  });

  it('sysctl, addresses and routes', async () => {
    await expect(ns.sysctl('net.ipv4.ip_forward; reboot', 1)).rejects.toThrow(/sysctl name/);
    await expect(ns.sysctl('../../etc/passwd', 1)).rejects.toThrow(TypeError);
    await expect(ns.sysctl('net.ipv4.ip_forward', 'a\nb')).rejects.toThrow(/one-line string/);
    await expect(ns.sysctl({})).rejects.toThrow(TypeError);
    await expect(ns.addAddress('eth0', '10.0.0.1/24 dev lo')).rejects.toThrow(/IPv4 or IPv6 address/);
    await expect(ns.addAddress('a very long interface name', '10.0.0.1/24')).rejects.toThrow(/interface name/);
    await expect(ns.addAddress('eth0', [])).rejects.toThrow(TypeError);
    await expect(ns.addRoute('default', {})).rejects.toThrow(/via\) or an interface \(dev/);
    await expect(ns.addRoute('somewhere', { dev: 'eth0' })).rejects.toThrow(/destination must be/);
    await expect(ns.ipBatch([['link', 'set', 'eth0 up']])).rejects.toThrow(/non-empty word/);
  });

  it('veth, topology and clients', async () => {
    await expect(veth(ns, ns, { mtu: 20 })).rejects.toThrow(RangeError);
    await expect(topology('lvs' as 'nat')).rejects.toThrow("mode must be 'nat', 'dr' or 'tun'");
    await expect(topology('tun', { realServers: 17 })).rejects.toThrow(RangeError);
    await expect(topology('tun', { tunnel: 'vxlan' as 'gue' })).rejects.toThrow(/options.tunnel/);
    await expect(topology('dr', { tunnel: 'ipip' })).rejects.toThrow(/for 'tun' topologies/);
    await expect(topology('tun', { guePort: 70000 })).rejects.toThrow(RangeError);
    await expect(tcpClient(ns, { host: '10.0.0.1', port: 0 })).rejects.toThrow(RangeError);
    await expect(tcpClient(ns, { host: '10.0.0.1', port: 80, connections: 0 })).rejects.toThrow(/options.connections/);
    await expect(httpClient(ns, { url: 1 as never })).rejects.toThrow(TypeError);
  });
});

describe('command errors', () => {
  it('carry the exit status, stderr and the command', async () => {
    const error = await runCommand(['sh', '-c', 'echo out; echo broken >&2; exit 4']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandError);
    expect(error).toMatchObject({ exitCode: 4, signal: null, stdout: 'out\n', stderr: 'broken\n' });
    expect((error as Error).message).toBe('sh -c echo out; echo broken >&2; exit 4: exited 4: broken');
    expect(() => runCommandSync(['sh', '-c', 'exit 5'])).toThrow(expect.objectContaining({ exitCode: 5 }));
  });

  it('name a command that cannot start, and a timeout', async () => {
    await expect(runCommand(['/nonexistent/tool'])).rejects.toThrow('cannot run /nonexistent/tool (ENOENT)');
    expect(() => runCommandSync(['/nonexistent/tool'])).toThrow('cannot run /nonexistent/tool (ENOENT)');
    await expect(runCommand(['sleep', '5'], { timeoutMs: 100 })).rejects.toThrow('timed out after 100 ms');
  });

  it('pass input to the command', async () => {
    expect(await runCommand(['cat'], { input: 'through stdin' })).toBe('through stdin');
    expect(runCommandSync(['cat'], { input: 'sync too' })).toBe('sync too');
  });
});
