// A real server for the director tests: `node http-server.mjs PORT NAME MODEDIR`.
// GET /health/TAG answers by the mode in MODEDIR/NAME-TAG ('up' when missing): 'up' 200,
// 'down' 503, 'flap' alternating 200 and 503. GET /hold answers "start NAME" and keeps the
// connection open until the client closes it. Anything else: 200 with NAME.
import { readFileSync } from 'node:fs';
import http from 'node:http';

const [port, name, modeDir] = process.argv.slice(2);
const flips = new Map();

function modeOf(tag) {
  try {
    return readFileSync(`${modeDir}/${name}-${tag}`, 'utf8').trim();
  } catch {
    return 'up';
  }
}

http.createServer((req, res) => {
  const health = /^\/health\/(\w+)$/.exec(req.url ?? '');
  if (health) {
    const tag = health[1];
    let mode = modeOf(tag);
    if (mode === 'flap') {
      const next = !flips.get(tag);
      flips.set(tag, next);
      mode = next ? 'up' : 'down';
    }
    res.statusCode = mode === 'up' ? 200 : 503;
    res.end(`${name} ${mode}\n`);
    return;
  }
  if (req.url === '/hold') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write(`start ${name}\n`);
    return;
  }
  res.end(`${name}\n`);
}).listen(Number(port), '0.0.0.0', () => console.log('listening'));
