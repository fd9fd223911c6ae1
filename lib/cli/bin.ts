#!/usr/bin/env node
// The package's `ipvs-netlink` executable. First it starts the kernel read that a short command
// will ask for (head-start.ts), so that the rest of the process's start-up overlaps the kernel's
// work; scripts/bundle-cli.mjs writes that module and the three it needs into this file at build
// time, so nothing is resolved or read before the read starts. Then it runs the command from
// dist/cli/bundle.js, the whole command in one script with V8's code cache beside it (also
// bundle-cli.mjs), so that a short command neither resolves and reads thirty modules nor
// compiles what it runs first. Another V8 version than the one that made the cache, no bundle,
// or a stale one (main.js lacks the bundle's stamp: tsc ran after it) runs main.js instead, the
// same code; a cache V8 still rejects (other V8 flags) only costs the compiling it would have saved.
import { startHeadStart } from './head-start';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Script } from 'node:vm';

import type * as Main from './main';

type MainModule = typeof Main;
type Load = (key: string) => unknown;

/** The bundle's module loader, or undefined (no bundle, a stale one, another V8). */
function loadBundle(): Load | undefined {
  const bundlePath = path.join(__dirname, 'bundle.js');
  let source: string;
  try {
    // ASCII (bundle-cli.mjs escapes the rest): latin1 copies the bytes into a one-byte string.
    source = readFileSync(bundlePath, 'latin1');
    // The bundle's first line is its stamp, which bundle-cli.mjs also appends to main.js; tsc
    // rewrites main.js (without it) on every build.
    // It ends with the V8 version that made the code cache: without the cache, V8 would preparse
    // the whole bundle, which is slower than loading main.js's modules one by one.
    const stamp = source.slice(0, source.indexOf('\n') + 1);
    if (!stamp.startsWith('// ipvs-netlink bundle ') || !stamp.endsWith(` v8 ${process.versions.v8}\n`) ||
      !readFileSync(path.join(__dirname, 'main.js'), 'utf8').endsWith(stamp)) {
      return undefined;
    }
  } catch {
    return undefined;
  }
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(path.join(__dirname, 'bundle.cache'));
  } catch { /* compiled without it */ }
  const script = new Script(source, cachedData ? { filename: bundlePath, cachedData } : { filename: bundlePath });
  const bundle = script.runInThisContext() as (distDir: string, nodeRequire: NodeJS.Require) => Load;
  return bundle(path.join(__dirname, '..'), require);
}

function runCommand(argv: string[]): void {
  const load = loadBundle();
  (load ? load('cli/main.js') as MainModule : require('./main') as MainModule).runAsProcess(argv);
}

const argv = process.argv.slice(2);
// The kernel's answer is read on the addon's threads while the command loads; a counted conns
// line is answered by its count alone, and the command loads only if that failed.
const answered = startHeadStart(argv);
if (answered) {
  void answered.then((printed) => {
    if (!printed) runCommand(argv);
  });
} else {
  runCommand(argv);
}
