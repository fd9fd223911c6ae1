export interface SoakSizes {
  operations: number;
  cycles: number;
  reads: number;
}
/** Memory figures in MiB: one per measuring point (the baseline, then after each part). */
export interface SoakResult {
  done: SoakSizes;
  seconds: SoakSizes;
  totalSeconds: number;
  parts: number;
  rssMiB: number[];
  rssAnonMiB: number[];
  rssFileMiB: number[];
  heapUsedMiB: number[];
  heapTotalMiB: number[];
  heapResidentMiB: number[];
  externalMiB: number[];
  /** Per part. */
  rssGrowthMiB: number[];
  rssAnonGrowthMiB: number[];
  /** Live JavaScript objects plus anonymous memory outside V8's heap. */
  retainedMiB: number[];
  retainedGrowthMiB: number[];
  retainedGrowthTotalMiB: number;
  threads: number[];
  /** glibc malloc arenas other than the main one, and their resident size, at each point. */
  mallocArenas: number[];
  mallocArenaResidentMiB: number[];
  /** With `perPhase`: what each phase of each part added (part counts from 0). */
  phaseGrowthMiB: { part: number; phase: keyof SoakSizes; retainedMiB: number; arenas: number; arenaResidentMiB: number }[];
  /** With `observe`: its result at every point (part -1 is the baseline). */
  observations: ({ part: number; phase: string; retained: number } & Record<string, unknown>)[];
  fdsBefore: number;
  fdsAfter: number;
}
export const FULL: SoakSizes;
export const SOAK_LIMIT_MIB: number;
export function soak(
  api: { Ipvs: unknown; countConnections: unknown },
  netns: string,
  sizes: SoakSizes,
  options?: { parts?: number; perPhase?: boolean; observe?: () => Record<string, unknown> },
): Promise<SoakResult>;
/** glibc's malloc arenas other than the main one (0 under another allocator), from /proc/self/smaps. */
export function mallocArenas(): { arenas: number; arenaResident: number };
/** Each of those arenas: where it starts (hex) and its resident bytes. */
export function mallocArenaList(): { start: string; rss: number }[];
