// Where the compiled peer program is, whether the kit runs from dist/ or from its TypeScript sources.
import { existsSync } from 'node:fs';
import path from 'node:path';

/** `node` plus the peer program, ready to prefix with a mode and options. */
export function peerCommand(): string[] {
  const script = path.resolve(__dirname, '..', '..', 'dist', 'testing', 'peer.js');
  if (!existsSync(script)) throw new Error(`ipvs-netlink/testing: ${script} is missing; build the package first (npm run build:ts)`);
  return [process.execPath, script];
}
