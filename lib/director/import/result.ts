// What an importer returns, and the error it throws for input it cannot read.
import type { DirectorConfig } from '../config';

/** A directive of the source file that the imported configuration does not carry. */
export interface Unsupported {
  /** The file the directive is in (an included file for keepalived's `include`). */
  file: string;
  /** 1-based line number. */
  line: number;
  /** The directive's keyword, e.g. `vrrp_instance`, `notify_up`, `emailalert`. */
  directive: string;
  /** Why it is not carried over, and what the director does instead where that matters. */
  reason: string;
}

export interface ImportResult {
  config: DirectorConfig;
  /** Every directive that was not mapped, in file order. Never silently dropped. */
  unsupported: Unsupported[];
}

/**
 * The source file is malformed or names a value the source program itself refuses. The message
 * starts with `file:line:`; `file` and `line` are also properties.
 */
export class ConfigImportError extends Error {
  override name = 'ConfigImportError';
  constructor(readonly file: string, readonly line: number, readonly reason: string) {
    super(`${file}:${line}: ${reason}`);
  }
}

/** `file:line: directive: reason`, the form `ipvs-netlink convert` prints. */
export function formatUnsupported(entry: Unsupported): string {
  return `${entry.file}:${entry.line}: ${entry.directive}: ${entry.reason}`;
}
