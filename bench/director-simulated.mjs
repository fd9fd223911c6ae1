// An in-memory table behind the Ipvs methods the director uses, for measuring the director's
// own cost per check on the host (where there is no IPVS): reconcile's real plan is computed
// against it, as the unit tests do. Not evidence about IPVS, only about our CPU per check.
import path from 'node:path';

/** A handle whose listTable/apply/connectionTable/batch/close work on a table in memory. */
export async function simulatedIpvs(dist) {
  const { Ipvs } = await import(path.join(dist, 'ipvs.js'));
  const { buildPlan, checkPlanInput } = await import(path.join(dist, 'reconcile', 'plan.js'));
  const { serviceKeyText } = await import(path.join(dist, 'reconcile', 'settings.js'));
  let table = [];
  const ipvs = Object.create(Ipvs.prototype);
  Object.assign(ipvs, {
    netns: undefined,
    listTable: async () => structuredClone(table),
    apply: async (desired, options) => {
      const input = checkPlanInput(desired, options.scope, 'delete');
      const plan = buildPlan(input, table);
      const owned = new Set(input.desired.keys);
      table = [...table.filter((s) => !owned.has(serviceKeyText(s))), ...structuredClone(input.desired.services)];
      return { plan, replanned: false, results: plan.operations.map((operation) => ({ ok: true, operation })), drift: [], ok: true };
    },
    connectionTable: async () => ({ length: 0, columns: { destinationAddress: new Uint32Array(0), destinationPort: new Uint16Array(0), state: new Uint16Array(0), addresses: [], states: [] } }),
    batch: () => ({ deleteService: () => {}, commit: async () => { table = []; return []; } }),
    close: async () => {},
  });
  return ipvs;
}
