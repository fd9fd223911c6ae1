// The reconcile benchmark's workload, shared by its VM benchmark, its probe and its host
// microbenchmark: a services x destinations table, then a change of 1% of the weights, 5
// destinations added (to services 0-4) and 5 removed (from services 5-9).
export const serviceOf = (s) => ({ protocol: 'tcp', address: `10.${(s >> 16) & 255}.${(s >> 8) & 255}.${s & 255}`, port: 80, scheduler: 'wlc' });
export const destinationOf = (s, d, weight) => ({ address: `172.16.${(s >> 8) & 255}.${d + 1}`, port: 80, forward: 'route', weight });

/** `base` and `changed` as desired states, and `floorOps`: exactly the operations between them. */
export function reconcileWorkload(services, destinationsPerService) {
  const base = [];
  for (let s = 0; s < services; s++) {
    const destinations = [];
    for (let d = 0; d < destinationsPerService; d++) destinations.push(destinationOf(s, d, 1 + (d % 5)));
    base.push({ ...serviceOf(s), destinations });
  }
  const changed = base.map((service) => ({ ...service, destinations: service.destinations.map((d) => ({ ...d })) }));
  const floorOps = [];
  const weightEdits = Math.round((services * destinationsPerService) / 100);
  for (let i = 0; i < weightEdits; i++) {
    const s = Math.floor((i * services) / weightEdits);
    const destination = changed[s].destinations[i % destinationsPerService];
    destination.weight += 10;
    floorOps.push(['editDestination', serviceOf(s), destination]);
  }
  for (let s = 0; s < 5; s++) {
    const added = destinationOf(s, destinationsPerService, 1);
    changed[s].destinations.push(added);
    floorOps.push(['addDestination', serviceOf(s), added]);
  }
  for (let s = 5; s < 10; s++) {
    const removed = changed[s].destinations.pop();
    floorOps.push(['deleteDestination', serviceOf(s), { address: removed.address, port: removed.port }]);
  }
  return { base, changed, floorOps };
}
