// A plan for people, in the spirit of `terraform plan`: one block per service, + add, ~ edit in
// place (with before -> after per field), - remove.
import { destinationKeyText, serviceKeyText } from './settings';
import type { FieldChange, Plan, PlanOperation, PlanValue } from './types';

const SERVICE_DEFAULTS: Record<string, PlanValue> = { onePacket: false, persistent: null, persistenceEngine: null };

function text(value: PlanValue | undefined): string {
  if (value === null || value === undefined) return '(none)';
  if (Array.isArray(value)) return `[${value.join(', ')}]`;
  if (typeof value === 'object') {
    return Object.entries(value as Record<string, PlanValue>).map(([k, v]) => (k === 'type' ? text(v) : `${k} ${text(v)}`)).join(' ');
  }
  return String(value);
}

/** `scheduler wlc, netmask 255.255.255.0`: the settings worth showing on an added service. */
function serviceSummary(spec: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const field of ['scheduler', 'persistent', 'netmask', 'onePacket', 'schedulerFlags', 'persistenceEngine']) {
    const value = spec[field] as PlanValue | undefined;
    if (value === undefined || value === SERVICE_DEFAULTS[field]) continue;
    if (field === 'netmask' && (value === '255.255.255.255' || value === 128)) continue;
    if (field === 'schedulerFlags' && Array.isArray(value) && value.length === 0) continue;
    parts.push(field === 'onePacket' ? 'onePacket' : `${field} ${text(value)}`);
  }
  return parts.join(', ');
}

function destinationSummary(spec: Record<string, unknown>): string {
  const parts = [`forward ${text(spec.forward as PlanValue)}`, `weight ${text(spec.weight as PlanValue)}`];
  if (spec.upperThreshold) parts.push(`upperThreshold ${String(spec.upperThreshold)}`);
  if (spec.lowerThreshold) parts.push(`lowerThreshold ${String(spec.lowerThreshold)}`);
  if (spec.tunnel) parts.push(`tunnel ${text(spec.tunnel as PlanValue)}`);
  return parts.join(', ');
}

function changeLines(changes: readonly FieldChange[], indent: string): string[] {
  return changes.map((c) => `${indent}${c.field}: ${text(c.before)} -> ${text(c.after)}`);
}

function isRemoval(op: PlanOperation): boolean {
  return op.op === 'deleteService' || op.op === 'deleteDestination' || (op.op === 'editDestination' && op.reason.startsWith('not in the desired state'));
}

/** Counts by kind: additions, in-place edits (quiesces included), removals. */
export function planSummary(plan: Plan): { add: number; change: number; remove: number } {
  let add = 0;
  let change = 0;
  let remove = 0;
  for (const op of plan.operations) {
    if (op.op === 'addService' || op.op === 'addDestination') add++;
    else if (op.op === 'editService' || op.op === 'editDestination') change++;
    else remove++;
  }
  return { add, change, remove };
}

/**
 * The plan as text for people: a summary line, then per service its own change (+ added,
 * ~ edited in place with each field's before -> after, - deleted) and its destinations'
 * changes; removals carry their reason. An empty plan prints "No changes." Never throws for a
 * Plan made by `ipvs.plan`.
 */
export function formatPlan(plan: Plan): string {
  const scope = typeof plan.scope === 'string' ? plan.scope : `filter ${JSON.stringify(plan.scope)}`;
  const options = `scope: ${scope}, removal: ${plan.removal}`;
  if (plan.operations.length === 0) return `No changes: the owned services already match the desired state (${options}).\n`;
  const { add, change, remove } = planSummary(plan);
  const lines = [`Plan: ${add} to add, ${change} to change, ${remove} to remove (${options}).`, ''];
  let current: string | undefined;
  for (const op of plan.operations) {
    const key = serviceKeyText(op.service);
    const own = op.op === 'addService' || op.op === 'editService' || op.op === 'deleteService';
    if (own) {
      current = key;
      if (op.op === 'addService') {
        const summary = serviceSummary(op.service as unknown as Record<string, unknown>);
        lines.push(`  + service ${key}${summary ? `  (${summary})` : ''}`);
      } else if (op.op === 'editService') {
        lines.push(`  ~ service ${key}`, ...changeLines(op.changes, '        '));
      } else {
        lines.push(`  - service ${key}  (with ${op.destinations} destination${op.destinations === 1 ? '' : 's'})  # ${op.reason}`);
      }
      continue;
    }
    if (current !== key) {
      lines.push(`    service ${key}`);
      current = key;
    }
    const destination = destinationKeyText(op.destination as { address: string; port: number });
    if (op.op === 'addDestination') {
      lines.push(`      + destination ${destination}  (${destinationSummary(op.destination as unknown as Record<string, unknown>)})`);
    } else if (op.op === 'editDestination') {
      lines.push(`      ~ destination ${destination}${isRemoval(op) ? `  # ${op.reason}` : ''}`, ...changeLines(op.changes, '          '));
    } else {
      lines.push(`      - destination ${destination}  # ${op.reason}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
