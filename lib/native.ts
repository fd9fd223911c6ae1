// Loads the compiled addon: a prebuilt binary from prebuilds/ first, then build/Release.
import path from 'node:path';

const packageRoot = path.join(__dirname, '..');

/**
 * Explains a failure to load the addon: a missing shared library or build is passed through
 * (as `cause`, with its own text in the message) with a hint naming what to install.
 */
export function explainLoadError(error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  if (/libnl(-genl)?-3\.so/.test(message)) {
    return new Error(
      `ipvs-netlink: the native addon needs the libnl-3 and libnl-genl-3 shared libraries: ${message}\n` +
        'Install them (Debian/Ubuntu: apt-get install libnl-3-200 libnl-genl-3-200; ' +
        'Fedora/RHEL: dnf install libnl3; Alpine: apk add libnl3).',
      { cause: error },
    );
  }
  if (/No native build was found/.test(message)) {
    return new Error(
      `ipvs-netlink: ${message}\nBuild from source with \`npm rebuild ipvs-netlink\` ` +
        '(needs a C++17 compiler, python3, make and the libnl-3-dev and libnl-genl-3-dev headers).',
      { cause: error },
    );
  }
  return error instanceof Error ? error : new Error(message);
}

function loadAddon(): Record<string, unknown> {
  try {
    const load = require('node-gyp-build') as (dir: string) => Record<string, unknown>;
    return load(packageRoot);
  } catch (error) {
    throw explainLoadError(error);
  }
}

let addon: Record<string, unknown> | undefined;

/** The native addon, loaded on first use so that importing the package never throws. */
export function nativeAddon(): Record<string, unknown> {
  addon ??= loadAddon();
  return addon;
}
