// Where the commands write. Everything goes through here so that tests can run a command's
// main() in-process and read what it printed, and so that large listings are written in one
// call rather than a line at a time.
import { writeSync } from 'node:fs';

export interface Sink {
  stdout(text: string): void;
  stderr(text: string): void;
}

// Standard output is written with write(2) on fd 1 rather than through process.stdout: a
// one-shot command then never builds the stream (for a pipe, the net module and a socket), which
// under emulation costs as much as a listing. A non-blocking fd 1 (EAGAIN: someone made it so)
// hands the rest, and everything after, to process.stdout, in order; a closed reader (EPIPE, as
// with `| head`) ends the output quietly.
let stdoutStream = false;
// Whether standard error went through process.stderr (a stream, which may still hold data).
let stderrStream = false;

function writeStdout(data: string | Uint8Array): void {
  if (stdoutStream) {
    process.stdout.write(data);
    return;
  }
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let offset = 0;
  try {
    while (offset < bytes.length) offset += writeSync(1, bytes, offset, bytes.length - offset);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') return;
    if (code !== 'EAGAIN') throw error;
    stdoutStream = true;
    process.stdout.write(bytes.subarray(offset));
  }
}

const processSink: Sink = {
  stdout: (text) => { if (text) writeStdout(text); },
  stderr: (text) => {
    if (!text) return;
    stderrStream = true;
    process.stderr.write(text);
  },
};

let current: Sink = processSink;

/** Writes to standard output (or the captured sink). */
export function stdout(text: string): void {
  current.stdout(text);
}

/** Writes bytes (UTF-8) to standard output in one call, or their text to the captured sink. */
export function stdoutBytes(bytes: Uint8Array): void {
  if (current === processSink) {
    if (bytes.length > 0) writeStdout(bytes);
  } else {
    current.stdout(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
  }
}

/**
 * Whether everything written so far has reached the operating system: standard output went out
 * with write(2), and whatever went through a stream is no longer queued in it. A one-shot
 * command may then end the process at once (lib/cli/main.ts).
 */
export function outputFlushed(): boolean {
  return (!stdoutStream || process.stdout.writableLength === 0) && (!stderrStream || process.stderr.writableLength === 0);
}

/** Writes to standard error (or the captured sink). */
export function stderr(text: string): void {
  current.stderr(text);
}

/** @internal Tests: route output into `sink` until the returned function is called. */
export function redirectOutput(sink: Sink): () => void {
  const previous = current;
  current = sink;
  return () => { current = previous; };
}

/** Standard input as text (the whole of it). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

let stdinOverride: string | undefined;

/** @internal Tests: the text the next readInput() returns instead of standard input. */
export function provideStdin(text: string | undefined): void {
  stdinOverride = text;
}

/** Standard input, or the text a test provided. */
export function readInput(): Promise<string> {
  if (stdinOverride !== undefined) {
    const text = stdinOverride;
    stdinOverride = undefined;
    return Promise.resolve(text);
  }
  return readStdin();
}
