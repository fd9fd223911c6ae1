// The status page: renders /api/status and follows /api/events. Every value from the server
// is put in the DOM as text (textContent / text nodes), never parsed as HTML.
'use strict';

(function main() {
  const token = new URLSearchParams(location.search).get('token');
  const withToken = (url) => (token ? `${url}?token=${encodeURIComponent(token)}` : url);
  const $ = (id) => document.getElementById(id);

  /** Builds an element; string and number children become text nodes. */
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null) continue;
      if (name === 'class') node.className = String(value);
      else node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const units = ['', 'K', 'M', 'G', 'T', 'P'];
  function human(value, suffix = '') {
    if (value === undefined || value === null) return '–';
    let v = Number(value);
    let i = 0;
    while (Math.abs(v) >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return `${i === 0 ? String(Math.round(v)) : v.toFixed(v < 10 ? 2 : 1)}${units[i]}${suffix}`;
  }
  function bytes(value) {
    if (value === undefined || value === null) return '–';
    let v = Number(value);
    const names = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (v >= 1024 && i < names.length - 1) { v /= 1024; i++; }
    return `${i === 0 ? String(v) : v.toFixed(1)} ${names[i]}`;
  }
  function clock(ms) {
    const d = new Date(ms);
    return d.toLocaleTimeString(undefined, { hour12: false });
  }
  function duration(seconds) {
    if (seconds < 1) return `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)} ms`;
    return `${seconds.toFixed(2)} s`;
  }

  function healthOf(destination) {
    if (destination.drain) return 'draining';
    if (destination.health) return destination.health;
    if (destination.weight === 0) return 'quiesced';
    return destination.inKernel ? 'in table' : 'absent';
  }
  function badgeClass(health) {
    if (health === 'up' || health === 'in table') return 'badge up';
    if (health === 'down' || health === 'absent') return 'badge down';
    if (health === 'draining' || health === 'quiesced') return 'badge draining';
    return 'badge';
  }

  function drainCell(drain) {
    if (!drain) return '';
    const elapsed = Math.max(0, (Date.now() - drain.started) / 1000);
    const total = Math.max(0.001, (drain.deadline - drain.started) / 1000);
    const bar = el('span', { class: 'progress', title: `${Math.round(elapsed)} of ${Math.round(total)} s before the deadline` }, el('span'));
    bar.firstChild.style.width = `${(Math.min(1, elapsed / total) * 100).toFixed(0)}%`;
    return el('span', {}, bar, ` ${drain.connections} conn left, ${Math.round(elapsed)}/${Math.round(total)} s (${drain.reason})`);
  }

  function checkCell(check) {
    if (!check) return el('td', { class: 'check' }, '–');
    const cell = el('td', { class: 'check', title: check.message || '' },
      el('span', { class: check.ok ? 'badge up' : 'badge down' }, check.ok ? 'ok' : 'fail'), ' ',
      `${check.type} ${duration(check.latency)}`);
    if (check.message) cell.append(' ', el('span', { class: 'message' }, check.message));
    return cell;
  }

  function renderService(service) {
    const title = el('h2', {}, el('span', { class: 'name' }, service.name));
    const meta = [];
    if (service.scheduler) meta.push(service.scheduler);
    if (service.persistent) meta.push(`persistent ${service.persistent} s`);
    if (!service.inKernel) meta.push('not in the kernel');
    if (service.stats) meta.push(`${human(service.stats.connectionRate)} conn/s, ${bytes(service.stats.byteRateIn)}/s in, ${bytes(service.stats.byteRateOut)}/s out, ${human(service.stats.connections)} conns total`);
    title.append(el('span', { class: 'meta' }, meta.join(' · ')));
    if (service.quorum) {
      title.append(el('span', { class: service.quorum.up ? 'badge up' : 'badge down', 'data-quorum': service.quorum.up ? 'up' : 'lost' },
        `quorum ${service.quorum.up ? 'ok' : 'lost'} (${service.quorum.liveWeight}/${service.quorum.required})`));
    }
    if (service.sorry) title.append(el('span', { class: 'badge sorry' }, 'sorry server in'));

    const head = el('tr', {},
      el('th', {}, 'Real server'), el('th', { class: 'text' }, 'Health'), el('th', {}, 'Weight'), el('th', {}, 'Active'),
      el('th', {}, 'Inactive'), el('th', {}, 'Persist'), el('th', {}, 'Conn/s'), el('th', {}, 'Pkt/s in'), el('th', {}, 'Pkt/s out'),
      el('th', {}, 'Bytes/s in'), el('th', {}, 'Bytes/s out'), el('th', {}, 'Conns'), el('th', { class: 'text' }, 'Last check'),
      el('th', { class: 'text' }, 'Drain'));
    const body = el('tbody');
    for (const d of service.destinations) {
      const health = healthOf(d);
      const weight = d.configuredWeight !== undefined && d.configuredWeight !== d.weight
        ? `${d.weight ?? '–'} (of ${d.configuredWeight})` : (d.weight ?? '–');
      const s = d.stats || {};
      body.append(el('tr', { 'data-destination': d.name, 'data-health': health },
        el('td', { class: 'addr' }, d.name, d.forward ? el('span', { class: 'meta' }, ` ${d.forward}`) : null,
          d.sorry ? el('span', { class: 'badge sorry' }, 'sorry') : null),
        el('td', { class: 'text' }, el('span', { class: badgeClass(health) }, health)),
        el('td', {}, weight), el('td', {}, d.activeConnections ?? '–'), el('td', {}, d.inactiveConnections ?? '–'),
        el('td', {}, d.persistentConnections ?? '–'), el('td', {}, human(s.connectionRate)), el('td', {}, human(s.packetRateIn)),
        el('td', {}, human(s.packetRateOut)), el('td', {}, bytes(s.byteRateIn)), el('td', {}, bytes(s.byteRateOut)),
        el('td', {}, human(s.connections)), checkCell(d.lastCheck), el('td', { class: 'text' }, drainCell(d.drain))));
    }
    if (service.destinations.length === 0) body.append(el('tr', {}, el('td', { colspan: 14, class: 'empty' }, 'no real servers')));
    return el('article', { class: 'service', 'data-service': service.name }, title, el('table', {}, el('thead', {}, head), body));
  }

  function renderStatus(snapshot) {
    const summary = $('summary');
    const parts = [];
    parts.push(el('span', {}, 'namespace ', el('b', {}, snapshot.netns || 'this host\'s')));
    parts.push(el('span', {}, el('b', {}, snapshot.services.length), ' services, ',
      el('b', {}, snapshot.services.reduce((n, s) => n + s.destinations.length, 0)), ' real servers'));
    if (snapshot.totals) {
      parts.push(el('span', {}, el('b', {}, human(snapshot.totals.connectionRate)), ' conn/s, ',
        el('b', {}, `${bytes(snapshot.totals.byteRateIn)}/s`), ' in, ', el('b', {}, `${bytes(snapshot.totals.byteRateOut)}/s`), ' out'));
    }
    for (const daemon of snapshot.daemons) {
      parts.push(el('span', {}, 'sync ', el('b', {}, daemon.state), ` on ${daemon.interface} (id ${daemon.syncId})`));
    }
    parts.push(el('span', {}, `read ${clock(snapshot.time)} in ${duration(snapshot.scrapeSeconds)}`));
    if (snapshot.error) parts.push(el('span', { class: 'error' }, snapshot.error));
    summary.replaceChildren(...parts);

    const services = $('services');
    if (snapshot.services.length === 0) services.replaceChildren(el('p', { class: 'empty' }, 'No virtual services.'));
    else services.replaceChildren(...snapshot.services.map(renderService));
    renderEvents(snapshot.events);
  }

  let events = [];
  function eventItem(event) {
    return el('li', { 'data-type': event.type },
      el('time', { datetime: new Date(event.time).toISOString() }, clock(event.time)),
      el('span', { class: `type ${event.type}` }, event.type),
      [event.service, event.destination, event.message].filter(Boolean).join(' · '));
  }
  function renderEvents(list) {
    if (list) events = list.slice(-100);
    const target = $('events');
    if (events.length === 0) target.replaceChildren(el('li', { class: 'empty' }, 'none yet'));
    else target.replaceChildren(...events.slice().reverse().map(eventItem));
  }

  function setConnection(state, text) {
    const node = $('connection');
    node.dataset.state = state;
    node.textContent = text;
  }

  let lastSnapshot = null;
  async function load() {
    const response = await fetch(withToken('api/status'), { cache: 'no-store' });
    if (!response.ok) throw new Error(`api/status: HTTP ${response.status}`);
    lastSnapshot = await response.json();
    renderStatus(lastSnapshot);
  }

  function follow() {
    const source = new EventSource(withToken('api/events'));
    source.addEventListener('open', () => setConnection('live', 'live'));
    source.addEventListener('error', () => setConnection('lost', 'reconnecting…'));
    source.addEventListener('status', (message) => {
      lastSnapshot = JSON.parse(message.data);
      renderStatus(lastSnapshot);
    });
    source.addEventListener('event', (message) => {
      events.push(JSON.parse(message.data));
      renderEvents();
    });
  }

  load().catch((error) => setConnection('lost', String(error.message || error))).finally(follow);
})();
