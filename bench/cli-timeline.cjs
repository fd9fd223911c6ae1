// A probe's preload (`node -r ./bench/cli-timeline.cjs dist/cli/bin.js …`), not part of the
// command: dates, in ms since the process's time origin, what a short command does, and prints
// them to stderr as one JSON line when it exits. Marks: preload (node's own start done), bin
// (bin.js starts), the addon's dlopen, listTableIn / countConnections / IpvsHandle.open /
// executeBatch called and settled, the bundle compiled (with or without its code cache) and
// its top level run, the first write to fd 1, exit.
const { performance } = require('node:perf_hooks');
const fs = require('node:fs');
const vm = require('node:vm');

const marks = { preload: performance.now() };
const mark = (name) => { marks[name] ??= performance.now(); };
const wrapAsync = (target, key, name) => {
  const original = target[key];
  target[key] = function (...args) {
    mark(`${name} call`);
    const result = original.apply(this, args);
    Promise.resolve(result).then(() => mark(`${name} done`), () => mark(`${name} failed`));
    return result;
  };
};

const dlopen = process.dlopen;
process.dlopen = function (module, filename, ...rest) {
  mark('dlopen start');
  const result = dlopen.call(this, module, filename, ...rest);
  mark('dlopen end');
  const addon = module.exports;
  if (addon && addon.listTableIn) {
    wrapAsync(addon, 'listTableIn', 'listTableIn');
    wrapAsync(addon, 'countConnections', 'countConnections');
    // The class's methods are read-only (N-API): its handles are wrapped instead.
    const IpvsHandle = addon.IpvsHandle;
    addon.IpvsHandle = {
      prototype: IpvsHandle.prototype,
      open(...args) {
        mark('open call');
        return IpvsHandle.open(...args).then((handle) => {
          mark('open done');
          return wrapHandle(handle);
        });
      },
    };
  }
  return result;
};

function wrapHandle(handle) {
  return new Proxy(handle, {
    get(target, key) {
      const value = Reflect.get(target, key);
      if (typeof value !== 'function') return value;
      if (key !== 'executeBatch' && key !== 'listTable' && key !== 'execute') return value.bind(target);
      return (...args) => {
        mark(`${key} call`);
        const result = value.apply(target, args);
        result.then(() => mark(`${key} done`), () => mark(`${key} failed`));
        return result;
      };
    },
  });
}

const Script = vm.Script;
vm.Script = class extends Script {
  constructor(source, options) {
    mark('script compile start');
    super(source, options);
    mark('script compiled');
    if (options && options.cachedData) marks.cacheRejected = this.cachedDataRejected;
  }
  runInThisContext(...args) {
    const result = super.runInThisContext(...args);
    mark('script run');
    return result;
  }
};

const Module = require('node:module');
const load = Module._load;
Module._load = function (request, ...rest) {
  if (/bin(\.js)?$/.test(request)) mark('bin');
  return load.call(this, request, ...rest);
};

const writeSync = fs.writeSync;
fs.writeSync = function (fd, ...rest) {
  if (fd === 1) mark('write');
  return writeSync.call(this, fd, ...rest);
};
process.on('exit', () => {
  mark('exit');
  writeSync(2, `TIMELINE ${JSON.stringify(marks)}\n`);
});
