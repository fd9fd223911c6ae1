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
  fdsBefore: number;
  fdsAfter: number;
}
export const FULL: SoakSizes;
export const SOAK_LIMIT_MIB: number;
export function soak(
  api: { Ipvs: unknown; countConnections: unknown },
  netns: string,
  sizes: SoakSizes,
  options?: { parts?: number },
): Promise<SoakResult>;
