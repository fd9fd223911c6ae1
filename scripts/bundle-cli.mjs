// Packs the `ipvs-netlink` command into one script with a V8 code cache, after tsc (npm run
// build:ts). A short command such as `ipvs-netlink ipvsadm -Ln` otherwise resolves, reads and
// compiles some thirty modules one by one, which under emulation costs more than its netlink work.
//
// Writes, next to dist/cli/main.js:
//   bundle.js     every dist/ module that dist/cli/main.js reaches through a relative require or
//                 import() (tsc's CommonJS output), each in its own function with its own
//                 __filename and __dirname, behind a small module table that keeps CommonJS
//                 semantics (one instance per module, cycles, require.main). Packages
//                 (commander, yaml, ...), node: builtins and the addon are loaded by Node's own
//                 require, as before.
//   bundle.cache  V8's code cache for bundle.js, made after every module's top level ran, so
//                 that what a command runs first needs no compiling. V8 rejects it when the Node
//                 version or V8 flags differ; dist/cli/bin.js then compiles the script as usual.
// dist/cli/bin.js (lib/cli/bin.ts, the package's bin) runs the bundle, or main.js without it.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';

import { syntheticTable } from './synthetic-table.cjs';

const dist = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'dist');
const entry = 'cli/main.js';
/** The modules of the commands whose start matters (and everything they load). */
const SHORT_COMMANDS = ['cli/main.js', 'cli/ipvsadm.js', 'cli/ipvsadm/run.js', 'cli/list.js', 'cli/save.js', 'cli/restore.js',
  'cli/conns.js', 'ipvs.js'];
const STAMP = /\/\/ ipvs-netlink bundle \w+ v8 \S+\n$/;
const REQUIRE = /\brequire\((["'])(\.{1,2}\/[^"']*)\1\)/g;

/** The dist-relative key of a relative request from `from`, as Node would resolve it. */
function resolveKey(from, request) {
  const base = path.posix.join(path.posix.dirname(from), request);
  for (const key of [base, `${base}.js`, `${base}/index.js`]) {
    try {
      if (readFileSync(path.join(dist, key)) && key.endsWith('.js')) return key;
    } catch { /* next */ }
  }
  throw new Error(`bundle-cli: ${from} requires '${request}', which is not in dist/`);
}

/** Every dist/ module that `entry` reaches through relative requires, by key, with its source. */
function collect(entry) {
  const sources = new Map();
  const pending = [entry];
  while (pending.length > 0) {
    const key = pending.pop();
    if (sources.has(key)) continue;
    const text = readFileSync(path.join(dist, key), 'utf8').replace(/^#!.*\n/, '').replace(STAMP, '')
      .replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n');
    sources.set(key, text);
    for (const match of text.matchAll(REQUIRE)) pending.push(resolveKey(key, match[2]));
  }
  return sources;
}

/**
 * The module table of `sources`: a script that evaluates to a function of (dist directory,
 * Node's require for bin.js) that returns load(key), a module's exports by its key
 * (`cli/main.js`), loaded on first use. require.main stays Node's (bin.js), so no bundled module
 * takes itself for the process's entry. Module keys are posix paths under dist/.
 */
function moduleTable(sources) {
  const keys = [...sources.keys()].sort();
  const definitions = keys.map((key) =>
    `${JSON.stringify(key)}: function (exports, require, module, __filename, __dirname) {\n${sources.get(key)}}`);
  return `(function (distDir, nodeRequire) {
'use strict';
const definitions = {
${definitions.join(',\n')}
};
const path = nodeRequire('node:path');
const cache = Object.create(null);
function keyOf(from, request) {
  const base = path.posix.join(path.posix.dirname(from), request);
  if (base in definitions) return base;
  if ((base + '.js') in definitions) return base + '.js';
  if ((base + '/index.js') in definitions) return base + '/index.js';
  return undefined;
}
function load(key) {
  const cached = cache[key];
  if (cached) return cached.exports;
  const filename = path.join(distDir, key);
  const module = { id: filename, filename, path: path.dirname(filename), exports: {}, loaded: false };
  cache[key] = module;
  const localRequire = (request) => {
    if (request.startsWith('./') || request.startsWith('../')) {
      const found = keyOf(key, request);
      return found === undefined ? nodeRequire(path.resolve(module.path, request)) : load(found);
    }
    return nodeRequire(request);
  };
  localRequire.main = nodeRequire.main;
  definitions[key].call(module.exports, module.exports, localRequire, module, filename, module.path);
  module.loaded = true;
  return module.exports;
}
load.keys = Object.keys(definitions);
return load;
})`;
}

const sources = collect(entry);
const keys = [...sources.keys()];
const body = moduleTable(sources);

// ASCII only, so that bin.js reads it as latin1: one byte per character, copied as it is, where
// UTF-8 would be decoded into a two-byte string (the sources have a few `…`, `×`, `→`). A
// \uXXXX escape means the same character in a string, template, regular expression or
// identifier, and nothing in a comment; only a backslash right before one would change meaning.
if (/\\[^\x00-\x7f]/.test(body)) throw new Error('bundle-cli: a backslash before a non-ASCII character; escape it in the source');
const asciiBody = body.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

// The stamp opens the bundle and ends main.js: dist/cli/bin.js runs the bundle only when both
// carry the same one (a later bare tsc build rewrites main.js without it).
// It also names the V8 that made the code cache: without its cache the bundle is slower to
// start than main.js (V8 preparses all of it), so another V8 runs main.js.
const stamp = `// ipvs-netlink bundle ${createHash('sha256').update(asciiBody).digest('hex').slice(0, 16)} v8 ${process.versions.v8}\n`;
const bundle = stamp + asciiBody;
const bundlePath = path.join(dist, 'cli', 'bundle.js');
writeFileSync(bundlePath, bundle);
const mainPath = path.join(dist, entry);
const mainText = readFileSync(mainPath, 'utf8').replace(STAMP, '');
writeFileSync(mainPath, `${mainText}${mainText.endsWith('\n') ? '' : '\n'}${stamp}`);

// The bin's head start: head-start.js and the modules it needs (the addon's loader, conns'
// arguments, io), written into dist/cli/bin.js in place of its require of head-start.js, so that
// the bin starts the kernel read without resolving, reading and compiling four files first
// (tsc's bin.js requires them; a later bare tsc build brings that back, only slower). A second
// run replaces the first's.
const binPath = path.join(dist, 'cli', 'bin.js');
const PRELUDE = /\/\* the bin's head start \*\/[\s\S]*\/\* end of the bin's head start \*\//;
const HEAD_START = 'require("./head-start")';
const prelude = `/* the bin's head start */ (${moduleTable(collect('cli/head-start.js'))})(require('node:path').join(__dirname, '..'), require)('cli/head-start.js') /* end of the bin's head start */`;
const binText = readFileSync(binPath, 'utf8').replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n');
if (!PRELUDE.test(binText) && binText.split(HEAD_START).length !== 2) throw new Error(`bundle-cli: dist/cli/bin.js has no single ${HEAD_START}`);
writeFileSync(binPath, PRELUDE.test(binText) ? binText.replace(PRELUDE, () => prelude) : binText.replace(HEAD_START, () => prelude));

/**
 * Runs, on made-up input and with output discarded, what the short commands run first: the
 * ipvsadm command line, the listings of the table and the restore check. The cache then holds
 * their compiled code too. The last two need the addon's record layout: without a built addon
 * they are skipped (the cache holds less, nothing else changes).
 */
async function warmUp(load) {
  const io = load('cli/io.js');
  const restoreOutput = io.redirectOutput({ stdout() {}, stderr() {} });
  try {
    const { Fmt, parseCommandLine } = load('cli/ipvsadm/options.js');
    for (const line of ['-Ln', '-L -n --stats --exact', '-Sn', '-A -t 10.0.0.1:80 -s wrr -p 300',
      '-a -t 10.0.0.1:80 -r 192.168.0.1:8080 -m -w 2']) await parseCommandLine(line.split(' '));
    let layout;
    try {
      layout = load('records.js').recordLayout();
    } catch (error) {
      console.log(`bundle-cli: no restore check or listing in the code cache (${error.message.split('\n')[0]})`);
      return;
    }
    const { parseRestoreInput } = load('cli/ipvsadm/restore.js');
    await parseRestoreInput('-A -t 10.0.0.1:80 -s wrr\n-a -t 10.0.0.1:80 -r 192.168.0.1:8080 -m -w 1\n' +
      '-A -u [2001:db8::1]:53 -s rr\n-a -u [2001:db8::1]:53 -r [2001:db8::2]:53 -g -w 1\n');
    const { TableView } = load('table-view.js');
    const { Namer } = load('cli/ipvsadm/format.js');
    const { PartwiseListing, formatTable } = load('cli/ipvsadm/service-listing.js');
    const table = syntheticTable(layout, 2, 3);
    const view = new TableView(table);
    const info = { version: '1.2.1', connectionTableSize: 4096 };
    for (const format of [Fmt.NUMERIC, Fmt.NUMERIC | Fmt.RULE, Fmt.NUMERIC | Fmt.STATS]) {
      formatTable(view, format, new Namer(true), info).toString();
      // The head start's listing, in parts (here one).
      const partwise = new PartwiseListing(format, new Namer(true));
      partwise.add(table);
      partwise.finish(info).toString();
    }
  } finally {
    restoreOutput();
  }
}

// The code cache: compile, run the top level of the short commands' modules and the warm-up,
// then save. The other commands' modules (director, metrics, apply...) stay out of it: V8 reads
// the whole cache at every start, and they compile as usual when they run.
const script = new vm.Script(bundle, { filename: bundlePath });
const load = script.runInThisContext()(dist, createRequire(bundlePath));
for (const key of SHORT_COMMANDS) load(key);
await warmUp(load);
const cache = script.createCachedData();
writeFileSync(path.join(dist, 'cli', 'bundle.cache'), cache);
console.log(`bundle-cli: ${keys.length} modules, ${(bundle.length / 1024).toFixed(0)} KiB, code cache ${(cache.length / 1024).toFixed(0)} KiB`);
