// Microbenchmark of ways to write exposition lines (`name{labels} value\n`) into 128 KiB
// chunks, on a synthetic 1,000 x 10 table's 17 families (about 180,000 lines, 18 MB): what
// each line costs under the test VM's emulated CPU, where a call into a builtin is dear.
// Needs no IPVS: run it on the host or in the VM (`scripts/vm/run.sh -- node bench/metrics-line-probe.mjs`).
//
//   node bench/metrics-line-probe.mjs [--reps 5]
import { performance } from 'node:perf_hooks';

const at = process.argv.indexOf('--reps');
const REPS = at >= 0 ? Number(process.argv[at + 1]) : 5;
const SERVICES = 1000;
const DESTINATIONS = 10;
const FAMILIES = 17;
const CHUNK = 128 * 1024;

const rows = [];
for (let s = 0; s < SERVICES; s++) {
  for (let d = 0; d < DESTINATIONS; d++) rows.push(`{service="tcp 10.0.${s >> 8}.${s & 255}:80",server="172.16.${s >> 8}.${d + 1}:80"}`);
}
const names = Array.from({ length: FAMILIES }, (_, f) => `ipvs_destination_family_${f}_total`);
// Values: mostly 0 (an idle table), some large.
const values = rows.map((_, i) => (i % 7 === 0 ? 1234567890123 : i % 3));

const chunk = Buffer.alloc(CHUNK + 8192);
let total = 0;
const flush = (position) => { total += position; return 0; };

function writeUint(out, at, value) {
  if (value < 10) { out[at] = 48 + value; return at + 1; }
  let digits = 1;
  for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  let end = at + digits;
  for (let rest = value; end > at; rest = Math.floor(rest / 10)) out[--end] = 48 + (rest % 10);
  return at + digits;
}

const labelBytes = rows.map((r) => Buffer.from(r));
const nameBytes = names.map((n) => Buffer.from(n));
const heads = names.map((n) => rows.map((r) => Buffer.from(`${n}${r} `)));
const headBuffers = names.map((n) => Buffer.from(rows.map((r) => `${n}${r} `).join('')));
const headEnds = names.map((n) => {
  const ends = new Uint32Array(rows.length);
  let end = 0;
  rows.forEach((r, i) => { end += Buffer.byteLength(`${n}${r} `); ends[i] = end; });
  return ends;
});
const headStrings = names.map((n) => rows.map((r) => `${n}${r} `));

const variants = {
  'two sets (name, labels): as now'() {
    let p = 0;
    for (let f = 0; f < FAMILIES; f++) {
      const name = nameBytes[f];
      for (let i = 0; i < rows.length; i++) {
        chunk.set(name, p); p += name.length;
        const l = labelBytes[i];
        chunk.set(l, p); p += l.length;
        chunk[p++] = 32;
        p = writeUint(chunk, p, values[i]);
        chunk[p++] = 10;
        if (p >= CHUNK) p = flush(p);
      }
    }
    flush(p);
  },
  'one set of a prebuilt head'() {
    let p = 0;
    for (let f = 0; f < FAMILIES; f++) {
      const family = heads[f];
      for (let i = 0; i < rows.length; i++) {
        const h = family[i];
        chunk.set(h, p); p += h.length;
        p = writeUint(chunk, p, values[i]);
        chunk[p++] = 10;
        if (p >= CHUNK) p = flush(p);
      }
    }
    flush(p);
  },
  'byte loop from a head buffer'() {
    let p = 0;
    for (let f = 0; f < FAMILIES; f++) {
      const source = headBuffers[f];
      const ends = headEnds[f];
      let start = 0;
      for (let i = 0; i < rows.length; i++) {
        const end = ends[i];
        for (let k = start; k < end; k++) chunk[p++] = source[k];
        start = end;
        p = writeUint(chunk, p, values[i]);
        chunk[p++] = 10;
        if (p >= CHUNK) p = flush(p);
      }
    }
    flush(p);
  },
  'strings joined per chunk, one latin1Write'() {
    let text = '';
    for (let f = 0; f < FAMILIES; f++) {
      const family = headStrings[f];
      for (let i = 0; i < rows.length; i++) {
        text += family[i] + values[i] + '\n';
        if (text.length >= CHUNK - 256) { flush(chunk.latin1Write(text, 0)); text = ''; }
      }
    }
    flush(chunk.latin1Write(text, 0));
  },
  'array of strings per chunk, join, one latin1Write'() {
    let parts = [];
    let length = 0;
    for (let f = 0; f < FAMILIES; f++) {
      const family = headStrings[f];
      for (let i = 0; i < rows.length; i++) {
        const h = family[i];
        parts.push(h, String(values[i]), '\n');
        length += h.length + 16;
        if (length >= CHUNK - 4096) { flush(chunk.latin1Write(parts.join(''), 0)); parts = []; length = 0; }
      }
    }
    flush(chunk.latin1Write(parts.join(''), 0));
  },
};

const results = {};
for (const name of Object.keys(variants)) results[name] = [];
for (const name of Object.keys(variants)) variants[name]();
for (let r = 0; r < REPS; r++) {
  for (const [name, run] of Object.entries(variants)) {
    total = 0;
    const started = performance.now();
    run();
    results[name].push(performance.now() - started);
  }
}
console.log(`${rows.length * FAMILIES} lines, ${total} bytes, median of ${REPS}`);
for (const [name, times] of Object.entries(results)) {
  times.sort((a, b) => a - b);
  console.log(`${times[times.length >> 1].toFixed(1).padStart(8)} ms  ${name}`);
}
