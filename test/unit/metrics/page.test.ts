// The status page in a real browser: Debian's Chromium, headless, driven by playwright-core.
// The browser cannot run in the test VM (it does not start within minutes under emulation),
// so the page is served here by the real server code from a status stream recorded in the VM
// by test/kernel/metrics.test.ts against real servers and the real Director (a fresh
// recording in .cache/metrics/ if the kernel test ran, else the copy committed in
// test/fixtures/metrics/). The live data path itself is tested in the VM over HTTP.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { chromium, type Browser } from 'playwright-core';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { MetricsServer } from '../../../lib/metrics/server';
import type { StatusSnapshot } from '../../../lib/metrics/status';
import type { FeedMessage, StatusFeed } from '../../../lib/metrics/status-feed';

const root = path.join(__dirname, '..', '..', '..');
const RECORDINGS = [path.join(root, '.cache/metrics/status-stream.jsonl'), path.join(root, 'test/fixtures/metrics/status-stream.jsonl')];
const PLANTED = '<script>window.__planted=1</script><img src=x onerror=window.__planted=2>';
const SERVER_3 = 'tr[data-destination="10.2.0.3:80"]';

interface Recorded { at: number; event: 'status' | 'event'; data: unknown }

function load(): Recorded[] {
  const file = RECORDINGS.find((f) => existsSync(f));
  if (!file) throw new Error(`no recorded status stream: run test/kernel/metrics.test.ts in the VM (${RECORDINGS.join(' or ')})`);
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Recorded);
}

const server3 = (s: StatusSnapshot) => s.services.find((x) => x.name === 'tcp 10.1.0.1:80')?.destinations.find((d) => d.name === '10.2.0.3:80');

/**
 * Replays the recording: the snapshot before 10.2.0.3 went down is the current one; play()
 * sends everything after it to the page's event stream, in order.
 */
class ReplayFeed implements StatusFeed {
  readonly #before: StatusSnapshot;
  readonly #rest: Recorded[];
  readonly #listeners = new Set<(m: FeedMessage) => void>();

  constructor(recording: Recorded[]) {
    // The last snapshot with both web servers up, before the first one after it that shows
    // 10.2.0.3:80 down. (On a loaded host the recording may begin with checks that timed out:
    // those snapshots are passed over.)
    const health = (m: Recorded) => (m.event === 'status' ? server3(m.data as StatusSnapshot)?.health : undefined);
    const bothUp = (m: Recorded) => m.event === 'status' && (m.data as StatusSnapshot).services
      .find((x) => x.name === 'tcp 10.1.0.1:80')?.destinations.every((d) => d.health === 'up') === true;
    let upAt: number | undefined;
    let downAt = -1;
    for (let i = 0; i < recording.length && downAt < 0; i++) {
      if (bothUp(recording[i]!)) upAt = i;
      else if (health(recording[i]!) === 'down' && upAt !== undefined) downAt = i;
    }
    if (upAt === undefined || downAt < 0) throw new Error('the recording never shows 10.2.0.3:80 going down after both web servers were up');
    this.#before = recording[upAt]!.data as StatusSnapshot;
    this.#rest = recording.slice(upAt + 1);
  }

  async current(): Promise<StatusSnapshot> {
    return this.#before;
  }

  subscribe(listener: (m: FeedMessage) => void): () => void {
    this.#listeners.add(listener);
    listener({ type: 'status', snapshot: this.#before });
    return () => this.#listeners.delete(listener);
  }

  play(): void {
    for (const m of this.#rest) {
      const message: FeedMessage = m.event === 'status'
        ? { type: 'status', snapshot: m.data as StatusSnapshot }
        : { type: 'event', event: m.data as Extract<FeedMessage, { type: 'event' }>['event'] };
      for (const listener of this.#listeners) listener(message);
    }
  }
}

describe('the status page in Chromium', () => {
  let browser: Browser;

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', timeout: 30_000 });
  }, 40_000);

  afterAll(async () => {
    await browser?.close();
  });

  it('shows the destinations, updates when a server goes down, and shows planted markup as text', async () => {
    const feed = new ReplayFeed(load());
    const server = await MetricsServer.start({ listen: '127.0.0.1:0', registry: new Registry(), feed });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('dialog', (dialog) => { errors.push(`dialog: ${dialog.message()}`); void dialog.dismiss(); });
    try {
      await page.goto(server.url);
      await page.waitForSelector(`${SERVER_3}[data-health="up"]`, { timeout: 10_000 });
      expect(await page.locator('tr[data-destination="10.2.0.2:80"]').getAttribute('data-health')).toBe('up');
      await page.waitForSelector('#connection[data-state="live"]', { timeout: 10_000 });

      // The DNS server's TXT answer, carried in the check message, is on the page as text.
      const dnsRow = page.locator('article[data-service="udp 10.1.0.1:53"] tr[data-destination="10.2.0.2:53"]');
      expect(await dnsRow.getAttribute('data-health')).toBe('down');
      expect(await dnsRow.locator('td.check').textContent()).toContain(PLANTED);
      expect(await page.evaluate(() => (globalThis as { __planted?: number }).__planted)).toBeUndefined();
      expect(await page.locator('main img, main script').count()).toBe(0);

      feed.play();
      await page.waitForSelector(`${SERVER_3}[data-health="down"]`, { timeout: 10_000 });
      expect(await page.locator(`${SERVER_3} td`).nth(2).textContent()).toBe('0 (of 2)');
      await page.waitForSelector('#events li[data-type="down"]', { timeout: 5_000 });
      expect(await page.locator('#events').textContent()).toContain('10.2.0.3:80');
      // Planted text in the events list (the 'down' reason) stays text as well.
      expect(await page.evaluate(() => (globalThis as { __planted?: number }).__planted)).toBeUndefined();
      expect(await page.locator('main img, main script').count()).toBe(0);
      expect(errors).toEqual([]);
      if (process.env.STATUS_PAGE_SCREENSHOT) await page.screenshot({ path: process.env.STATUS_PAGE_SCREENSHOT, fullPage: true });
    } finally {
      await page.close();
      await server.close();
    }
  }, 45_000);

  it('needs the token on a non-loopback listener, and the page passes it on', async () => {
    const feed = new ReplayFeed(load());
    const server = await MetricsServer.start({ listen: '0.0.0.0:0', token: 'tok-123', registry: new Registry(), feed });
    const base = `http://127.0.0.1:${server.address.port}/`;
    const page = await browser.newPage();
    try {
      expect((await page.goto(base))!.status()).toBe(401);
      expect((await page.goto(`${base}?token=nope`))!.status()).toBe(401);
      expect((await page.goto(`${base}?token=tok-123`))!.status()).toBe(200);
      await page.waitForSelector(`${SERVER_3}[data-health="up"]`, { timeout: 10_000 });
      await page.waitForSelector('#connection[data-state="live"]', { timeout: 10_000 });
      expect((await page.request.get(`${base}metrics`)).status()).toBe(401);
      expect((await page.request.get(`${base}metrics`, { headers: { authorization: 'Bearer tok-123' } })).status()).toBe(200);
    } finally {
      await page.close();
      await server.close();
    }
  }, 30_000);
});
