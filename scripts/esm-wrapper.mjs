// Writes an ES module facade (dist/**/index.mjs, with its index.d.mts) over the CommonJS build
// for every entry point in package.json's exports map, so that `import { Ipvs } from 'ipvs-netlink'`
// and `require('ipvs-netlink')` (likewise 'ipvs-netlink/testing', …) share one instance, and
// TypeScript sees ESM types for the import condition. An entry has this shape:
//   "./x": { "import": { "types": "./dist/x/index.d.mts", "default": "./dist/x/index.mjs" },
//            "require": { "types": "./dist/x/index.d.ts", "default": "./dist/x/index.js" } }
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = new URL('..', import.meta.url);
const require = createRequire(import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));

for (const [entry, target] of Object.entries(pkg.exports)) {
  if (typeof target !== 'object' || !target.import || !target.require) continue;
  const esm = target.import;
  const cjs = target.require;
  if (typeof esm !== 'object' || typeof cjs !== 'object' || !esm.default || !esm.types || !cjs.default || !cjs.types) {
    throw new Error(`package.json exports["${entry}"]: give import and require each { types, default }`);
  }
  const cjsFile = new URL(cjs.default, root);
  const names = Object.keys(require(cjsFile.pathname)).filter((n) => n !== 'default' && n !== '__esModule');
  const cjsSpecifier = `./${path.basename(cjs.default)}`;
  writeFileSync(new URL(esm.default, root), [
    `import cjs from '${cjsSpecifier}';`,
    ...names.map((n) => `export const ${n} = cjs.${n};`),
    'export default cjs;',
    '',
  ].join('\n'));
  writeFileSync(new URL(esm.types, root), [
    `export * from '${cjsSpecifier}';`,
    `import * as cjs from '${cjsSpecifier}';`,
    'export default cjs;',
    '',
  ].join('\n'));
}
