// Shared pieces of the benchmarks: timing, tables, result files. Benchmarks report ratios to
// reference commands measured in the same run, never absolute pass/fail thresholds.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const projectRoot = path.join(import.meta.dirname, '..');
export const resultsDir = path.join(projectRoot, 'bench', 'results');

/** `--name VALUE` from the command line, or the fallback. */
export function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

/** Exits unless running inside the IPVS test VM: every kernel benchmark changes the IPVS table. */
export function requireTestVm(bench) {
  if (process.env.IPVS_VM === '1' && process.getuid?.() === 0) return;
  console.error(`${bench} runs as root inside the IPVS test VM (it changes the IPVS table): use \`npm run bench\``);
  process.exit(2);
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function run(command, args, options = {}) {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30, ...options });
}

/** The machine the numbers come from, for the README table. */
export function machine() {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  let kernel = os.release();
  let virtualization = '';
  try {
    const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
    if (/QEMU|TCG/i.test(cpuinfo) || process.env.IPVS_VM === '1') virtualization = 'qemu TCG guest';
  } catch {
    // not Linux
  }
  return { cpu, cpus: os.cpus().length, memoryMiB: Math.round(os.totalmem() / 2 ** 20), kernel, virtualization, node: process.version };
}

/** Prints rows as an aligned text table. */
export function printTable(title, columns, rows) {
  const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => String(r[i] ?? '').length)));
  const line = (cells) => cells.map((cell, i) => String(cell ?? '').padStart(widths[i])).join('  ');
  console.log(`\n${title}`);
  console.log(line(columns));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}

export function writeResult(name, data) {
  mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${name}.json`);
  writeFileSync(file, `${JSON.stringify({ machine: machine(), date: new Date().toISOString(), ...data }, null, 2)}\n`);
  console.log(`results written to ${path.relative(projectRoot, file)}`);
}

export const ms = (value) => (value === undefined ? '' : value >= 100 ? value.toFixed(0) : value.toFixed(1));
export const ratio = (value) => (value === undefined || !Number.isFinite(value) ? '' : `${value.toFixed(2)}x`);
