// Writes an ES module facade (dist/**/index.mjs) over the CommonJS build for every entry point in
// package.json's exports map, so that `import { Ipvs } from 'ipvs-netlink'` and
// `require('ipvs-netlink')` (likewise 'ipvs-netlink/director', …) share one instance.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = new URL('..', import.meta.url);
const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));

for (const target of Object.values(pkg.exports)) {
  if (typeof target !== 'object' || !target.import || !target.require) continue;
  const cjsFile = new URL(target.require, root);
  const names = Object.keys(require(cjsFile.pathname)).filter((n) => n !== 'default' && n !== '__esModule');
  const lines = [
    `import cjs from './${path.basename(target.require)}';`,
    ...names.map((n) => `export const ${n} = cjs.${n};`),
    'export default cjs;',
    '',
  ];
  writeFileSync(new URL(target.import, root), lines.join('\n'));
}
