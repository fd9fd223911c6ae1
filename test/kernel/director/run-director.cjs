// Runs the compiled director on an imported keepalived.conf / ldirectord.cf in the current
// network namespace (started under `ip netns exec`), as a real deployment would: its checks
// leave from this namespace. Prints one JSON line per event on stdout; SIGTERM stops it.
//
//   node run-director.cjs DIST_DIR keepalived|ldirectord FILE
'use strict';
const path = require('node:path');

const [dist, format, file] = process.argv.slice(2);
const { Director } = require(path.join(dist, 'director', 'index.js'));
const { importKeepalived } = require(path.join(dist, 'director', 'import', 'keepalived.js'));
const { importLdirectord } = require(path.join(dist, 'director', 'import', 'ldirectord.js'));

(async () => {
  const { config, unsupported } = await (format === 'keepalived' ? importKeepalived : importLdirectord)(file);
  process.stdout.write(`${JSON.stringify({ type: 'imported', config, unsupported })}\n`);
  const director = new Director(config);
  for (const type of ['up', 'down', 'weight', 'quorum-lost', 'quorum-gained', 'sorry-on', 'sorry-off', 'applied', 'error']) {
    director.on(type, (event) => {
      const { error, ...rest } = event;
      process.stdout.write(`${JSON.stringify(error ? { ...rest, error: String(error) } : rest)}\n`);
    });
  }
  process.on('SIGTERM', () => { director.stop().then(() => process.exit(0)); });
  await director.start();
  process.stdout.write(`${JSON.stringify({ type: 'started' })}\n`);
})().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : String(error)}\n`);
  process.exit(1);
});
