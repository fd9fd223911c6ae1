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
  rssAfter: number;
  rssGrowthMiB: number;
  fdsBefore: number;
  fdsAfter: number;
}
export const FULL: SoakSizes;
export function soak(api: { Ipvs: unknown; countConnections: unknown }, netns: string, sizes: SoakSizes): Promise<SoakResult>;
