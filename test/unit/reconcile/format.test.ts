import { describe, expect, it } from 'vitest';

import { formatPlan } from '../../../lib/reconcile/format';
import { buildPlan, checkPlanInput } from '../../../lib/reconcile/plan';
import { modelWith } from './model';

describe('formatPlan', () => {
  it('prints each service block with + ~ - and before -> after per field', () => {
    const live = modelWith([
      { protocol: 'tcp', address: '10.0.0.1', port: 80, destinations: [{ address: '10.1.0.1', weight: 1 }, { address: '10.1.0.9' }] },
      { fwmark: 7, scheduler: 'rr', destinations: [{ address: '10.1.0.3' }, { address: '10.1.0.4' }] },
      { protocol: 'udp', address: '10.0.0.2', port: 53, destinations: [{ address: '10.1.0.5', weight: 4 }] },
    ]).table();
    const input = checkPlanInput([
      {
        protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'wrr',
        destinations: [{ address: '10.1.0.1', weight: 5 }, { address: '10.1.0.2', forward: 'masq', port: 8080 }],
      },
      { protocol: 'udp', address: '2001:db8::1', port: 53, persistent: 60, destinations: [{ address: '2001:db8::5', forward: 'tunnel', tunnel: { type: 'gue', port: 6080 } }] },
      { protocol: 'udp', address: '10.0.0.2', port: 53, destinations: [] },
    ], { addresses: ['0.0.0.0/0', '::/0'], fwmarks: [[1, 99]] }, 'quiesce');
    expect(formatPlan(buildPlan(input, live))).toBe([
      'Plan: 3 to add, 2 to change, 2 to quiesce, 1 to remove (scope: filter {"addresses":["0.0.0.0/0","::/0"],"fwmarks":[[1,99]]}, removal: quiesce).',
      '',
      '  ~ service tcp 10.0.0.1:80',
      '        scheduler: wlc -> wrr',
      '      + destination 10.1.0.2:8080  (forward masq, weight 1)',
      '      ~ destination 10.1.0.1:80',
      '          weight: 1 -> 5',
      '      ~ destination 10.1.0.9:80  # not in the desired state: quiesced (weight 0) for draining',
      '          weight: 1 -> 0',
      '  + service udp [2001:db8::1]:53  (scheduler wlc, persistent 60)',
      '      + destination [2001:db8::5]:53  (forward tunnel, weight 1, tunnel gue port 6080 checksum none)',
      '    service udp 10.0.0.2:53',
      '      ~ destination 10.1.0.5:53  # not in the desired state: quiesced (weight 0) for draining',
      '          weight: 4 -> 0',
      "  - service fwmark 7  (with 2 destinations)  # not in the desired state, and matched by the scope filter",
      '',
    ].join('\n'));
  });

  it('says so when there is nothing to do', () => {
    const plan = buildPlan(checkPlanInput([], 'all', undefined), []);
    expect(formatPlan(plan)).toBe('No changes: the owned services already match the desired state (scope: all, removal: delete).\n');
  });
});
