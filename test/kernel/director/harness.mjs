// Runs a Director inside the current network namespace (started with `ip netns exec`) for the
// kernel tests: JSON commands on stdin, JSON lines out ({ event } and { reply, result|error }).
import { createInterface } from 'node:readline';

const { Director } = await import(process.env.DIRECTOR_DIST);

let director;
const out = (value) => process.stdout.write(`${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}\n`);
const eventJson = (event) => (event.type === 'error'
  ? { ...event, error: { message: event.error.message, code: event.error.code, name: event.error.name } }
  : event);

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const { id, cmd, args = [] } = JSON.parse(line);
  try {
    let result;
    if (cmd === 'start') {
      director = new Director(args[0], { checkEvents: true });
      for (const type of ['check', 'up', 'down', 'weight', 'drain-start', 'drained', 'quorum-lost', 'quorum-gained', 'sorry-on', 'sorry-off', 'drift-repaired', 'applied', 'error']) {
        director.on(type, (event) => out({ event: eventJson(event) }));
      }
      await director.start();
    } else if (cmd === 'update') {
      await director.update(args[0]);
    } else if (cmd === 'drain') {
      // Resolves later: answer now, the 'drained' event tells the rest.
      director.drain(args[0], args[1]).catch(() => {});
    } else if (cmd === 'undrain') {
      await director.undrain(args[0], args[1]);
    } else if (cmd === 'status') {
      result = director.status();
    } else if (cmd === 'stop') {
      await director.stop(args[0]);
      out({ reply: id, result: null });
      break;
    }
    out({ reply: id, result: result ?? null });
  } catch (error) {
    out({ reply: id, error: { message: error.message, name: error.name, code: error.code } });
  }
}
