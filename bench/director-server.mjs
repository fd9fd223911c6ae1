// A minimal real HTTP server for the director benchmark: `node director-server.mjs PORT…`
// listens on 0.0.0.0 on every PORT (so every address of the namespace answers) and answers each
// request with 200 and closes, as a health endpoint does. It prints `listening` once bound and
// then, every second, `count N` (requests answered so far), which the benchmark reads to know
// how many checks really reached a server.
import net from 'node:net';

const RESPONSE = Buffer.from('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n');
let answered = 0;
let bound = 0;
const ports = process.argv.slice(2).map(Number);

for (const port of ports) {
  net.createServer((socket) => {
    socket.on('error', () => {});
    let head = '';
    socket.on('data', (chunk) => {
      head += chunk.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        answered++;
        socket.end(RESPONSE);
      }
    });
  }).listen({ port, host: '0.0.0.0', backlog: 4096 }, () => {
    if (++bound === ports.length) console.log('listening');
  });
}
setInterval(() => console.log(`count ${answered}`), 1000);
