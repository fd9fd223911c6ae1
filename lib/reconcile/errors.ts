// The one error of reconciliation that is neither bad input nor a kernel error.
import type { Plan } from './types';

/**
 * `apply(plan)` found that the owned part of the table changed since the plan was made (its
 * fingerprint differs), and was not told to re-plan. Nothing was sent. Code 'ESTALE'.
 * `currentPlan` is what planning the same desired state now gives; apply it, or pass
 * `{ ifStale: 'replan' }` to apply.
 */
export class PlanStaleError extends Error {
  readonly code = 'ESTALE' as const;
  readonly plannedFingerprint: string;
  readonly currentFingerprint: string;
  readonly currentPlan: Plan;

  constructor(plan: Plan, currentPlan: Plan) {
    super(
      'apply: the plan is stale: the owned part of the table changed since it was planned ' +
        `(${plan.operations.length} operation(s) planned then, ${currentPlan.operations.length} now); ` +
        "nothing was sent. Plan again, or apply with { ifStale: 'replan' }",
    );
    this.name = 'PlanStaleError';
    this.plannedFingerprint = plan.fingerprint;
    this.currentFingerprint = currentPlan.fingerprint;
    this.currentPlan = currentPlan;
  }
}
