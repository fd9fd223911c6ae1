// The director in one command: a virtual service 10.0.0.1:80 with two real web servers and a
// sorry server, each in a network namespace of its own, behind a director namespace (NAT).
// One server fails and recovers, then both fail and the sorry server takes over and hands
// back; events and the table are printed as they happen. Needs root and a kernel with IPVS
// (`npm start` provides both, in a VM when the host has no IPVS). About 40 seconds.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

// ---- the director side: run inside the director namespace ----------------------------------
if (process.argv[2] === '--director') {
  const { Director } = await import('ipvs-netlink/director');
  const check = { type: 'http', path: '/', interval: 0.5, timeout: 0.3, rise: 2, fall: 2 };
  const director = new Director({
    resyncInterval: 2,
    services: [{
      protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'wrr',
      checks: [check],
      slowStart: 2,
      sorryServers: [{ address: '10.0.3.2', port: 80, forward: 'masq' }],
      destinations: [
        { address: '10.0.1.2', port: 80, forward: 'masq', weight: 4 },
        { address: '10.0.2.2', port: 80, forward: 'masq', weight: 4 },
      ],
    }],
  });
  for (const type of ['up', 'down', 'weight', 'quorum-lost', 'quorum-gained', 'sorry-on', 'sorry-off', 'drift-repaired', 'error']) {
    director.on(type, (event) => console.log(JSON.stringify(event.type === 'error' ? { ...event, error: event.error.message } : event)));
  }
  await director.start();
  console.log(JSON.stringify({ type: 'started' }));
  process.stdin.resume();
  process.stdin.on('end', async () => {
    await director.stop({ leave: 'remove' });
    process.exit(0);
  });
} else {
  await demo();
}

async function demo() {
  const run = (...args) => execFileSync(args[0], args.slice(1), { encoding: 'utf8' });
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const id = process.pid.toString(36);
  const ns = (name) => `demo-${id}-${name}`;
  const names = ['lb', 'client', 'web1', 'web2', 'sorry'];
  const dir = mkdtempSync(path.join(tmpdir(), 'ipvs-demo-'));
  const servers = new Map();
  let director;
  const t0 = Date.now();
  const stamp = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
  const say = (text) => console.log(`${stamp()}  ${text}`);

  // A one-exchange HTTP responder per connection (socat forks it): reads the request, answers NAME.
  writeFileSync(path.join(dir, 'http.sh'), [
    'while read -r line; do [ "$(printf %s "$line" | tr -d \'\\r\')" = "" ] && break; done',
    'printf \'HTTP/1.1 200 OK\\r\\nContent-Length: %s\\r\\nConnection: close\\r\\n\\r\\n%s\' "${#1}" "$1"',
    '',
  ].join('\n'));
  const startServer = async (name) => {
    const child = spawn('ip', ['netns', 'exec', ns(name), 'socat', 'TCP-LISTEN:80,fork,reuseaddr', `SYSTEM:sh ${dir}/http.sh ${name}`], { stdio: 'ignore', detached: true });
    servers.set(name, child);
    for (let i = 0; i < 100 && !run('ip', 'netns', 'exec', ns(name), 'ss', '-Hltn', 'sport = :80').trim(); i++) await sleep(50);
  };
  const stopServer = (name) => {
    const child = servers.get(name);
    if (child) process.kill(-child.pid, 'SIGKILL');
    servers.delete(name);
  };
  const table = () => run('ip', 'netns', 'exec', ns('lb'), 'ipvsadm', '-Ln').trimEnd().split('\n').slice(1)
    .map((line) => `         ${line}`).join('\n');
  const requests = (n) => Array.from({ length: n }, () => {
    try {
      return run('ip', 'netns', 'exec', ns('client'), 'curl', '-s', '--max-time', '2', 'http://10.0.0.1/').trim();
    } catch {
      return '(no answer)';
    }
  }).join(' ');

  const waiters = [];
  const waitFor = (predicate, what) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 30_000);
    waiters.push((event) => {
      if (!predicate(event)) return false;
      clearTimeout(timer);
      resolve(event);
      return true;
    });
  });
  const describe = (e) => {
    switch (e.type) {
      case 'up': return `UP       ${e.destination} (was ${e.from})`;
      case 'down': return `DOWN     ${e.destination}: ${e.reason}`;
      case 'weight': return `weight   ${e.destination} ${e.from} -> ${e.to}${e.present ? '' : ' (removed)'} [${e.reason}]`;
      case 'quorum-lost': return `QUORUM LOST (live weight ${e.liveWeight} < ${e.quorum})`;
      case 'quorum-gained': return `quorum gained (live weight ${e.liveWeight})`;
      case 'sorry-on': return `SORRY SERVER IN: ${e.servers.join(', ')}`;
      case 'sorry-off': return `sorry server out: ${e.servers.join(', ')}`;
      case 'error': return `error    ${e.operation}: ${e.error}`;
      default: return e.type;
    }
  };

  try {
    for (const name of names) run('ip', 'netns', 'add', ns(name));
    for (const name of names) run('ip', '-n', ns(name), 'link', 'set', 'lo', 'up');
    const link = (a, aIf, aAddr, b, bIf, bAddr) => {
      run('ip', '-n', ns(a), 'link', 'add', aIf, 'type', 'veth', 'peer', 'name', bIf, 'netns', ns(b));
      run('ip', '-n', ns(a), 'addr', 'add', aAddr, 'dev', aIf);
      run('ip', '-n', ns(b), 'addr', 'add', bAddr, 'dev', bIf);
      run('ip', '-n', ns(a), 'link', 'set', aIf, 'up');
      run('ip', '-n', ns(b), 'link', 'set', bIf, 'up');
    };
    link('client', 'eth0', '10.0.0.2/24', 'lb', 'front', '10.0.0.1/24');
    link('lb', 'web1', '10.0.1.1/24', 'web1', 'eth0', '10.0.1.2/24');
    link('lb', 'web2', '10.0.2.1/24', 'web2', 'eth0', '10.0.2.2/24');
    link('lb', 'sorry', '10.0.3.1/24', 'sorry', 'eth0', '10.0.3.2/24');
    run('ip', 'netns', 'exec', ns('lb'), 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    for (const [name, n] of [['web1', 1], ['web2', 2], ['sorry', 3]]) run('ip', '-n', ns(name), 'route', 'add', 'default', 'via', `10.0.${n}.1`);
    for (const name of ['web1', 'web2', 'sorry']) await startServer(name);

    say('namespaces: client 10.0.0.2 -> director 10.0.0.1 (VIP :80, NAT) -> web1 10.0.1.2, web2 10.0.2.2, sorry 10.0.3.2');
    say('starting the director: http checks every 0.5 s, rise 2, fall 2, slowStart 2 s, sorry server below quorum');
    director = spawn('ip', ['netns', 'exec', ns('lb'), process.execPath, fileURLToPath(import.meta.url), '--director'], { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: director.stdout }).on('line', (line) => {
      const event = JSON.parse(line);
      if (event.type !== 'started') say(describe(event));
      for (let i = 0; i < waiters.length; i++) if (waiters[i](event)) waiters.splice(i--, 1);
    });

    const bothUp = Promise.all([
      waitFor((e) => e.type === 'up' && e.destination === '10.0.1.2:80', 'web1 up'),
      waitFor((e) => e.type === 'up' && e.destination === '10.0.2.2:80', 'web2 up'),
    ]);
    await bothUp;
    await sleep(300);
    console.log(table());
    say(`8 requests to the VIP: ${requests(8)}`);

    console.log();
    say('--- web1 fails (its server stops)');
    stopServer('web1');
    await waitFor((e) => e.type === 'weight' && e.destination === '10.0.1.2:80' && e.to === 0, 'web1 quiesced');
    console.log(table());
    say(`8 requests to the VIP: ${requests(8)}`);

    console.log();
    say('--- web2 fails too: below quorum, the sorry server takes over');
    stopServer('web2');
    await waitFor((e) => e.type === 'sorry-on', 'the sorry server');
    await sleep(300);
    console.log(table());
    say(`4 requests to the VIP: ${requests(4)}`);

    console.log();
    say('--- web1 recovers: quorum is back, the sorry server hands back; web1 ramps up over slowStart');
    await startServer('web1');
    await waitFor((e) => e.type === 'sorry-off', 'the sorry server to go');
    await sleep(300);
    console.log(table());
    await waitFor((e) => e.type === 'weight' && e.destination === '10.0.1.2:80' && e.to === 4, 'web1 at full weight');
    console.log(table());
    say(`4 requests to the VIP: ${requests(4)}`);

    console.log();
    say('--- web2 recovers');
    await startServer('web2');
    await waitFor((e) => e.type === 'weight' && e.destination === '10.0.2.2:80' && e.to === 4, 'web2 at full weight');
    console.log(table());
    say(`8 requests to the VIP: ${requests(8)}`);
    say('done: see README "Director" for the configuration file and the other check types');
  } finally {
    if (director) {
      director.stdin.end();
      await new Promise((resolve) => director.once('exit', resolve));
    }
    for (const name of [...servers.keys()]) stopServer(name);
    for (const name of names) {
      try { run('ip', 'netns', 'delete', ns(name)); } catch { /* not created */ }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
