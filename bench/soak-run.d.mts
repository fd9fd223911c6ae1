export interface SoakSizes {
  operations: number;
  cycles: number;
  reads: number;
}
export interface SoakResult {
  done: SoakSizes;
  seconds: SoakSizes;
  totalSeconds: number;
  rssBefore: number;
  rssMiddle: number;
  rssAfter: number;
  firstHalfGrowthMiB: number;
  secondHalfGrowthMiB: number;
  /** The second half's growth over the whole run (twice it): the growth that continues. */
  rssGrowthMiB: number;
  /** V8's heap after GC, before, between the halves and after. */
  heapUsedMiB: number[];
  heapTotalMiB: number[];
  fdsBefore: number;
  fdsAfter: number;
}
export const FULL: SoakSizes;
export function soak(api: { Ipvs: unknown; countConnections: unknown }, netns: string, sizes: SoakSizes): Promise<SoakResult>;
