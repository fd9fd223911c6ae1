// `npm start`: runs examples/demo.mjs where IPVS is — directly on a host with ip_vs loaded
// (as root), otherwise inside the test VM on Debian's kernel.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit' }).status ?? 1;

if (!existsSync(`${root}/build/Release/ipvs_netlink.node`) || !existsSync(`${root}/dist/index.js`)) {
  if (run('npm', ['run', 'build']) !== 0) process.exit(1);
}
const direct = existsSync('/proc/net/ip_vs') && process.getuid?.() === 0;
const status = direct
  ? run(process.execPath, ['examples/demo.mjs'])
  : run('bash', ['scripts/vm/run.sh', '--kernel', '6.17', '--', 'node', 'examples/demo.mjs']);
process.exit(status);
