// alert-relay dashboard: a small client of the relay's JSON API, hand-written, no build step.
//
// Security rules this file keeps:
// - The API token lives in sessionStorage only and leaves the page only as `Authorization: Bearer` in fetch;
//   it is never put in a URL, the DOM, or the console. Sign out (or a 401) forgets it.
// - Everything received is rendered with textContent (alert bodies are written by whoever sends alerts);
//   nothing here assigns innerHTML.
// - Live accounts cost the outbound budget on every read: accounts are polled every ACCOUNTS_EVERY_MS.
'use strict';

(function () {
  const TOKEN_KEY = 'alert-relay.token';
  const LOG_EVERY_MS = 2000;
  const ACCOUNTS_EVERY_MS = 10000;
  // Roll dates change once a day at most.
  const CONTRACTS_EVERY_MS = 60000;
  // Keys whose values are shown as [redacted] in a body, should one ever reach the page.
  const SECRET_KEY = /secret|token|passw|passphrase|api[_-]?key|signature|authorization/i;

  const $ = (id) => {
    const e = document.getElementById(id);
    if (!e) throw new Error('dashboard: missing element #' + id);
    return e;
  };

  // ------------------------------------------------------------------------------------------- DOM helpers

  /** An element with attributes (class, data-*, href, ...) and children (nodes or text). */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = String(v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function badge(text, cls) {
    return el('span', { class: 'badge ' + (cls || ''), text });
  }

  function statusClass(s) {
    if (s === 'executed' || s === 'ok') return 'good';
    if (s === 'unknown' || s === 'degraded' || s === 'executing' || s === 'accepted') return 'warn';
    if (s === 'failed' || s === 'rejected' || s === 'refused' || s === 'expired') return 'bad';
    return '';
  }

  function fmtTime(ms) {
    if (!ms) return '';
    const d = new Date(ms);
    return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }

  function fmtRequest(r) {
    if (!r) return '';
    const parts = [r.account, r.action, r.quantity, r.instrument];
    if (r.takeProfit !== undefined) parts.push('tp ' + r.takeProfit);
    if (r.stopLoss !== undefined) parts.push('sl ' + r.stopLoss);
    return parts.filter((p) => p !== undefined && p !== null).join(' ');
  }

  /** A copy of `v` with the values of secret-looking keys replaced. */
  function redact(v) {
    if (Array.isArray(v)) return v.map(redact);
    if (v && typeof v === 'object') {
      const out = {};
      for (const [k, x] of Object.entries(v)) out[k] = SECRET_KEY.test(k) ? '[redacted]' : redact(x);
      return out;
    }
    return v;
  }

  /** Shows what went wrong with an operator's action in the banner (a 401 has signed out already). */
  function guard(promise, what) {
    promise.catch((e) => {
      if (!(e instanceof Unauthorized)) banner(what + ': ' + e.message);
    });
  }

  function banner(msg) {
    const b = $('banner');
    b.textContent = msg || '';
    b.hidden = !msg;
  }

  // ------------------------------------------------------------------------------------------------ the API

  class Unauthorized extends Error {}

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  /** A JSON request to the relay with the session's token; a 401 signs out. */
  async function api(path, opts) {
    const t = token();
    if (!t) throw new Unauthorized('signed out');
    const init = Object.assign({ cache: 'no-store', credentials: 'omit', headers: {} }, opts || {});
    init.headers = Object.assign({ Authorization: 'Bearer ' + t }, init.headers);
    if (init.json !== undefined) {
      init.method = init.method || 'POST';
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(init.json);
      delete init.json;
    }
    const session = state.session;
    const resp = await fetch(path, init);
    let body = null;
    try {
      body = await resp.json();
    } catch (_) {
      body = null;
    }
    // Signed out (or in again) meanwhile: what this request brings back belongs to no one now.
    if (session !== state.session) throw new Unauthorized('signed out meanwhile');
    if (resp.status === 401) {
      signOut('The relay refused the token: sign in again.');
      throw new Unauthorized('unauthorized');
    }
    return { status: resp.status, ok: resp.ok, body };
  }

  function errorText(r) {
    return (r.body && r.body.error) || 'HTTP ' + r.status;
  }

  // ------------------------------------------------------------------------------------- sign in, sign out

  const state = {
    // Bumped at each sign-in and sign-out: answers to an earlier session are dropped.
    session: 0,
    // The next run of each poll, by its function.
    timers: new Map(),
    filterKey: '',
    detailId: null,
    killOn: null,
    // The open alert's last replay result: {id, dryRun, node}.
    replay: null,
  };

  async function signIn(ev) {
    ev.preventDefault();
    const input = $('token');
    const t = input.value.trim();
    input.value = '';
    $('sign-in-error').textContent = '';
    if (!t) return;
    let resp;
    try {
      resp = await fetch('/api/kill-switch', {
        cache: 'no-store',
        credentials: 'omit',
        headers: { Authorization: 'Bearer ' + t },
      });
    } catch (e) {
      $('sign-in-error').textContent = 'The relay cannot be reached.';
      return;
    }
    if (resp.status === 401) {
      $('sign-in-error').textContent = 'The relay refused this token.';
      return;
    }
    if (!resp.ok) {
      $('sign-in-error').textContent = 'The relay answered HTTP ' + resp.status + '.';
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, t);
    start();
  }

  function signOut(reason) {
    state.session += 1;
    sessionStorage.removeItem(TOKEN_KEY);
    for (const t of state.timers.values()) clearTimeout(t);
    state.timers.clear();
    for (const id of ['log-rows', 'accounts', 'alert-detail', 'health-problems', 'health-unknown', 'rolls', 'roll-dates']) {
      clear($(id));
    }
    $('app-view').hidden = true;
    $('sign-out').hidden = true;
    $('health-badge').hidden = true;
    $('roll-as-of').textContent = '';
    $('kill-badge').hidden = true;
    $('sign-in-view').hidden = false;
    $('sign-in-error').textContent = reason || '';
    banner('');
    $('token').focus();
  }

  function start() {
    state.session += 1;
    $('sign-in-view').hidden = true;
    $('app-view').hidden = false;
    $('sign-out').hidden = false;
    poll(refreshLog, LOG_EVERY_MS);
    poll(refreshAccounts, ACCOUNTS_EVERY_MS);
    poll(refreshContracts, CONTRACTS_EVERY_MS);
    route();
  }

  /** Runs `f` now and then every `every` ms after each run ends (never two at once). */
  function poll(f, every) {
    const session = state.session;
    const live = () => token() && session === state.session;
    const run = async () => {
      if (!live()) return;
      try {
        await f();
      } catch (e) {
        if (e instanceof Unauthorized) return;
        if (live()) banner('Cannot reach the relay: ' + e.message);
      }
      if (live()) state.timers.set(f, setTimeout(run, every));
    };
    run();
  }

  // -------------------------------------------------------------------------------------------- the log

  function filters() {
    return {
      status: $('filter-status').value,
      source: $('filter-source').value.trim(),
      instrument: $('filter-instrument').value.trim(),
      since: $('filter-since').value.trim(),
      refusals: $('filter-refusals').checked,
    };
  }

  /** `since` as the relay reads it (unix ms, an age such as 7d, RFC 3339), in ms; null if unreadable. */
  function sinceMs(v) {
    if (!v) return null;
    if (/^\d+$/.test(v)) return Number(v);
    const age = /^(\d+)\s*(s|m|min|h|d|w)$/.exec(v);
    if (age) {
      const unit = { s: 1e3, m: 6e4, min: 6e4, h: 36e5, d: 864e5, w: 6048e5 }[age[2]];
      return Date.now() - Number(age[1]) * unit;
    }
    const t = Date.parse(v);
    return Number.isNaN(t) ? null : t;
  }

  async function refreshLog() {
    const session = state.session;
    const f = filters();
    const q = new URLSearchParams();
    const onlyRefusals = f.status === 'refused';
    if (f.status && !onlyRefusals) q.set('status', f.status);
    if (f.source) q.set('source', f.source);
    if (f.instrument) q.set('instrument', f.instrument);
    if (f.since) q.set('since', f.since);
    q.set('limit', '200');
    const wantRefusals = f.refusals && !f.instrument && (!f.status || onlyRefusals);
    const [alerts, refusals, kill, health] = await Promise.all([
      onlyRefusals ? null : api('/api/alerts?' + q.toString()),
      wantRefusals ? api('/api/refusals?limit=200') : null,
      api('/api/kill-switch'),
      fetch('/healthz', { cache: 'no-store', credentials: 'omit' }).then((r) => r.json()),
    ]);
    // Every await is a point where the operator may have signed out: render nothing for a past session.
    if (session !== state.session) return;
    renderKill(kill);
    renderHealth(health);
    if (alerts && !alerts.ok) {
      $('filter-error').textContent = errorText(alerts);
      return;
    }
    $('filter-error').textContent = '';
    banner('');
    const rows = [];
    for (const a of alerts ? alerts.body.alerts : []) rows.push({ kind: 'alert', at: a.receivedAtMs, a });
    if (refusals && refusals.ok) {
      const since = sinceMs(f.since);
      for (const r of refusals.body.refusals) {
        if (f.source && r.source !== f.source) continue;
        if (since !== null && r.atMs < since) continue;
        rows.push({ kind: 'refusal', at: r.atMs, r });
      }
    }
    rows.sort((x, y) => y.at - x.at);
    renderLog(rows);
    if (state.detailId) await refreshDetail();
  }

  function renderLog(rows) {
    const body = $('log-rows');
    clear(body);
    for (const row of rows) body.append(row.kind === 'alert' ? alertRow(row.a) : refusalRow(row.r));
    const n = rows.filter((r) => r.kind === 'alert').length;
    $('log-count').textContent = n + ' alert(s), ' + (rows.length - n) + ' refusal(s)';
  }

  function alertRow(a) {
    const ex = a.executions || [];
    let req = ex.length ? fmtRequest(ex[0].request) : '-';
    if (ex.length > 1) req += ' +' + (ex.length - 1);
    let reason = a.reason || '';
    if (a.replayOf) reason = (reason ? reason + '; ' : '') + 'replay of ' + a.replayOf;
    const tr = el('tr', { class: 'alert-row', 'data-kind': 'alert', 'data-id': a.id, 'data-status': a.status },
      el('td', { class: 'time' }, fmtTime(a.receivedAtMs)),
      el('td', {}, a.source),
      el('td', {}, badge(a.status, statusClass(a.status))),
      el('td', {}, el('a', { href: '#/alerts/' + encodeURIComponent(a.id), class: 'open' }, req)),
      el('td', { class: 'reason' }, reason));
    tr.addEventListener('click', (ev) => {
      if (ev.target.tagName !== 'A') location.hash = '#/alerts/' + encodeURIComponent(a.id);
    });
    return tr;
  }

  function refusalRow(r) {
    return el('tr', { class: 'refusal-row', 'data-kind': 'refusal', 'data-http-status': r.status },
      el('td', { class: 'time' }, fmtTime(r.atMs)),
      el('td', {}, r.source),
      el('td', {}, badge('refused ' + r.status, 'bad')),
      el('td', { class: 'muted' }, 'from ' + r.address),
      el('td', { class: 'reason' }, r.reason, r.hint ? el('div', { class: 'hint' }, r.hint) : null));
  }

  // ------------------------------------------------------------------------------------ kill switch, health

  function renderKill(r) {
    if (!r.ok) return;
    const on = !!r.body.enabled;
    state.killOn = on;
    $('kill-state').textContent = on ? 'STOPPED (kill switch on)' : 'running';
    $('kill-state').className = on ? 'bad' : 'good';
    const b = $('kill-toggle');
    b.textContent = on ? 'Turn the kill switch off (resume)' : 'Turn the kill switch ON (stop everything)';
    b.className = on ? '' : 'danger';
    b.disabled = false;
    $('kill-badge').hidden = !on;
  }

  async function toggleKill() {
    if (state.killOn === null) return;
    const want = !state.killOn;
    const question = want
      ? 'Turn the kill switch ON? Nothing will execute until it is turned off: every alert is recorded as rejected.'
      : 'Turn the kill switch off? Alerts will execute again.';
    if (!window.confirm(question)) return;
    $('kill-toggle').disabled = true;
    const r = await api('/api/kill-switch', { json: { enabled: want } });
    if (!r.ok) banner('Kill switch: ' + errorText(r));
    renderKill(await api('/api/kill-switch'));
  }

  function renderHealth(h) {
    const st = h.status || 'unknown';
    const hb = $('health-badge');
    hb.hidden = false;
    hb.textContent = st;
    hb.className = 'badge ' + statusClass(st);
    const s = $('health-status');
    s.textContent = st;
    s.className = 'badge ' + statusClass(st);
    const problems = $('health-problems');
    clear(problems);
    for (const p of h.problems || []) problems.append(el('li', { class: 'problem' }, p));
    if (!(h.problems || []).length) problems.append(el('li', { class: 'muted' }, 'no problems'));
    const unknown = $('health-unknown');
    clear(unknown);
    for (const u of h.unknown || []) {
      unknown.append(el('li', {},
        el('a', { href: '#/alerts/' + encodeURIComponent(u.alertId) }, u.alertId),
        ' ' + [u.account, u.instrument, u.ocoId ? 'OCO ' + u.ocoId : ''].filter(Boolean).join(' ')));
    }
    if (!(h.unknown || []).length) unknown.append(el('li', { class: 'muted' }, 'none'));
    renderRolls(h);
  }

  // Contract rolls: what is held in an old month, from /healthz problems (`old contract month: ...`).
  function renderRolls(h) {
    const list = $('rolls');
    clear(list);
    const items = (h.problems || []).filter((p) => /^old contract month/.test(p));
    for (const i of items) list.append(el('li', { class: 'problem' }, i));
    if (!items.length) list.append(el('li', { class: 'muted' }, 'nothing'));
  }

  // Each root's front month, next roll and expiry, as the relay computes them (the page computes none).
  async function refreshContracts() {
    const session = state.session;
    const r = await api('/api/contracts');
    if (session !== state.session) return;
    if (!r.ok) {
      $('roll-as-of').textContent = 'Cannot read the contract months: ' + errorText(r);
      return;
    }
    const body = $('roll-dates');
    clear(body);
    for (const c of r.body.roots) {
      const soon = c.rollSoon ? badge('in ' + c.daysToRoll + ' d', 'warn') : el('small', { class: 'muted' }, 'in ' + c.daysToRoll + ' d');
      body.append(el('tr', { 'data-root': c.root, 'data-roll': c.roll, title: c.why },
        el('td', {}, c.root),
        el('td', {}, c.front),
        el('td', { class: c.rollSoon ? 'warn' : '' }, c.roll, ' ', soon),
        el('td', {}, c.next),
        el('td', {}, c.expiry)));
    }
    if (!r.body.roots.length) body.append(el('tr', {}, el('td', { class: 'muted', colspan: 5 }, 'no futures roots configured')));
    $('roll-as-of').textContent = 'as of ' + r.body.exchangeDate + ' in Chicago; a roll less than ' +
      r.body.warningDays + ' days away is marked';
  }

  // ------------------------------------------------------------------------------------------- accounts

  async function refreshAccounts() {
    const session = state.session;
    const r = await api('/api/accounts');
    if (session !== state.session) return;
    if (!r.ok) {
      banner('Accounts: ' + errorText(r));
      return;
    }
    const box = $('accounts');
    clear(box);
    for (const a of r.body.accounts) box.append(accountCard(a));
    if (!r.body.accounts.length) box.append(el('p', { class: 'muted' }, 'no accounts configured'));
    $('accounts-updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  }

  function accountCard(a) {
    const card = el('div', { class: 'account', 'data-account': a.account },
      el('h3', {}, a.account, ' ', badge(a.live ? 'live' : 'paper', a.live ? 'warn' : ''), ' ',
        a.live ? el('small', { class: 'muted' }, a.executor) : null));
    if (a.error) {
      card.append(el('p', { class: 'error' }, 'Cannot read the account: ' + a.error));
      return card;
    }
    if (a.positions.length) {
      const t = el('table', { class: 'positions' },
        el('thead', {}, el('tr', {}, el('th', {}, 'instrument'), el('th', {}, 'position'), el('th', {}, 'avg price'))));
      const tb = el('tbody');
      for (const p of a.positions) {
        tb.append(el('tr', {},
          el('td', {}, p.instrument),
          el('td', {}, (p.quantity > 0 ? 'long ' : 'short ') + Math.abs(p.quantity)),
          el('td', {}, p.averagePrice)));
      }
      t.append(tb);
      card.append(t);
    } else {
      card.append(el('p', { class: 'muted' }, 'flat'));
    }
    const byId = new Map(a.orders.map((o) => [o.orderId, o]));
    const inPair = new Set();
    for (const pair of a.ocoPairs) {
      const box = el('div', { class: 'oco-pair', 'data-oco': pair.ocoId },
        el('div', { class: 'oco-head' }, 'OCO ' + pair.ocoId + (pair.instrument ? ' · ' + pair.instrument : '')));
      for (const id of pair.orderIds) {
        inPair.add(id);
        const o = byId.get(id);
        if (o) box.append(orderLine(o));
      }
      card.append(box);
    }
    for (const o of a.orders) if (!inPair.has(o.orderId)) card.append(orderLine(o));
    if (!a.orders.length) card.append(el('p', { class: 'muted' }, 'no working orders'));
    return card;
  }

  function orderLine(o) {
    const price = o.limitPrice !== undefined ? '@ ' + o.limitPrice : o.stopPrice !== undefined ? 'stop ' + o.stopPrice : '';
    return el('div', { class: 'order', 'data-order': o.orderId },
      [o.action, o.quantity, o.instrument, o.orderType, price].filter((x) => x !== undefined && x !== '').join(' '),
      ' ', badge(o.state || '?', ''),
      el('span', { class: 'muted id' }, ' ' + o.orderId));
  }

  // ----------------------------------------------------------------------------------- one alert's page

  function route() {
    const m = /^#\/alerts\/(.+)$/.exec(location.hash);
    state.detailId = m ? decodeURIComponent(m[1]) : null;
    $('alert-panel').hidden = !state.detailId;
    $('log-panel').hidden = !!state.detailId;
    clear($('alert-detail'));
    if (state.detailId && token()) guard(refreshDetail(), 'Cannot read the alert');
  }

  async function refreshDetail() {
    const id = state.detailId;
    const session = state.session;
    const r = await api('/api/alerts/' + encodeURIComponent(id));
    if (id !== state.detailId || session !== state.session) return;
    const box = $('alert-detail');
    // Keep what the operator is typing (a resolve note) across refreshes: redraw only on change.
    const key = JSON.stringify(r.body);
    if (box.dataset.key === key && box.firstChild) return;
    box.dataset.key = key;
    clear(box);
    if (!r.ok) {
      box.append(el('p', { class: 'error' }, errorText(r)));
      return;
    }
    renderDetail(box, r.body);
  }

  function kv(dl, k, v) {
    if (v === undefined || v === null || v === '' || (Array.isArray(v) && !v.length)) return;
    dl.append(el('dt', {}, k), el('dd', {}, v));
  }

  function alertLink(id) {
    return el('a', { href: '#/alerts/' + encodeURIComponent(id) }, id);
  }

  function renderDetail(box, a) {
    box.append(el('h2', {}, 'Alert ', el('span', { id: 'alert-id', class: 'mono' }, a.id), ' ',
      el('span', { id: 'alert-status' }, badge(a.status, statusClass(a.status)))));
    const dl = el('dl', { class: 'fields' });
    kv(dl, 'received', a.receivedAt);
    kv(dl, 'source', a.source);
    kv(dl, 'template', a.template);
    kv(dl, 'reason', a.reason);
    kv(dl, 'key', a.idempotencyKey ? a.idempotencyKey + ' (' + (a.keyOrigin || '?') + ')' : null);
    kv(dl, 'client', a.clientIp);
    if (a.replayOf) kv(dl, 'replay of', alertLink(a.replayOf));
    if ((a.replayedBy || []).length) {
      const span = el('span');
      a.replayedBy.forEach((id, i) => span.append(i ? ', ' : '', alertLink(id)));
      kv(dl, 'replayed by', span);
    }
    box.append(dl);

    box.append(el('h3', {}, 'Body (secrets removed)'));
    box.append(el('pre', { id: 'alert-body', class: 'body' }, JSON.stringify(redact(a.body), null, 2)));

    box.append(el('h3', {}, 'Requests and outcome'));
    const ex = a.executions || [];
    if (!ex.length) box.append(el('p', { class: 'muted' }, 'no request (nothing to execute)'));
    ex.forEach((e, i) => box.append(executionBlock(e, i)));

    box.append(replayBlock(a));
    if (ex.some((e) => e.status === 'unknown')) box.append(resolveBlock(a));
  }

  function executionBlock(e, i) {
    const d = el('div', { class: 'execution', 'data-status': e.status },
      el('div', {}, el('strong', {}, '#' + (i + 1) + ' '), fmtRequest(e.request), ' ',
        badge(e.status, statusClass(e.status)), e.executor ? el('span', { class: 'muted' }, ' via ' + e.executor) : null));
    const dl = el('dl', { class: 'fields' });
    kv(dl, 'OCO id', e.request && e.request.ocoId);
    kv(dl, 'error', e.error);
    kv(dl, 'superseded by', e.supersededBy ? alertLink(e.supersededBy) : null);
    if (e.outcome) {
      kv(dl, 'placed', (e.outcome.placedOrderIds || []).join(', '));
      kv(dl, 'cancelled', (e.outcome.cancelledOrderIds || []).join(', '));
      kv(dl, 'quantity', e.outcome.quantity);
      kv(dl, 'outcome', e.outcome.reason);
    }
    if (e.settledBy) {
      kv(dl, 'settled by', e.settledBy + ' at ' + fmtTime(e.settledAtMs));
      kv(dl, 'seen', e.settledSeen);
      kv(dl, 'note', e.settledNote);
    }
    d.append(dl);
    if ((e.attempts || []).length) {
      const t = el('table', { class: 'attempts' },
        el('thead', {}, el('tr', {}, el('th', {}, 'attempt at'), el('th', {}, 'transport'), el('th', {}, 'result'),
          el('th', {}, 'ms'), el('th', {}, 'error'))));
      const tb = el('tbody');
      for (const at of e.attempts) {
        tb.append(el('tr', {}, el('td', {}, fmtTime(at.atMs)), el('td', {}, at.transport),
          el('td', {}, at.status), el('td', {}, at.durationMs), el('td', {}, at.error || '')));
      }
      t.append(tb);
      d.append(el('div', { class: 'scroll' }, t));
    }
    return d;
  }

  // Replay: a dry run first; executing is offered only after the operator has seen the plan.
  // The page is redrawn when the record changes (a replay adds to `replayedBy`): the last result, and whether
  // a dry run was seen, are kept per alert in state.replay so a redraw does not take them away.
  function replayBlock(a) {
    const kept = state.replay && state.replay.id === a.id ? state.replay : { id: a.id, dryRun: false, node: null };
    state.replay = kept;
    const out = el('div', { id: 'replay-result' }, kept.node);
    const paper = el('button', { type: 'button', id: 'replay-paper', disabled: !kept.dryRun }, 'Replay on paper');
    const live = el('button', { type: 'button', id: 'replay-live', class: 'danger', disabled: !kept.dryRun }, 'Replay live');
    const force = el('input', { type: 'checkbox', id: 'replay-force' });
    const run = async (to) => {
      if (to === 'live' && !window.confirm('Replay alert ' + a.id + ' LIVE? Live accounts trade for real.')) return;
      const body = { to };
      if (force.checked) body.force = true;
      const r = await api('/api/alerts/' + encodeURIComponent(a.id) + '/replay', { json: body });
      const result = el('div');
      if (!r.ok) {
        result.append(el('p', { class: 'error' }, 'Replay refused: ' + errorText(r)));
        if (r.body && r.body.newerAlertId) result.append(el('p', {}, 'newer alert: ', alertLink(r.body.newerAlertId)));
      } else {
        result.append(planView(r.body.plan, r.body.changed));
        if (to === 'dry-run') {
          kept.dryRun = true;
          paper.disabled = false;
          live.disabled = false;
        } else {
          result.append(el('p', {}, 'Replayed as ', alertLink(r.body.alert.id), ' ',
            badge(r.body.alert.status, statusClass(r.body.alert.status))));
        }
      }
      kept.node = result;
      const shown = document.getElementById('replay-result');
      if (shown) {
        clear(shown);
        shown.append(result);
      }
    };
    const dry = el('button', { type: 'button', id: 'replay-dry-run' }, 'Dry run');
    dry.addEventListener('click', () => guard(run('dry-run'), 'Replay'));
    paper.addEventListener('click', () => guard(run('paper'), 'Replay'));
    live.addEventListener('click', () => guard(run('live'), 'Replay'));
    return el('div', { class: 'actions' },
      el('h3', {}, 'Replay'),
      el('p', { class: 'hint' }, 'A dry run shows what the current templates would send now; replaying makes a new record.'),
      dry, ' ', paper, ' ', live, ' ', el('label', { class: 'check' }, force, ' force (even if stale)'),
      out);
  }

  function planView(p, changed) {
    const d = el('div', { class: 'plan' }, el('div', {}, changed ? badge('CHANGED', 'warn') : badge('same', 'good')));
    d.append(el('div', {}, 'was: ', (p.original || []).map(fmtRequest).join('; ') || '(nothing sent)'));
    d.append(el('div', {}, 'now: ', (p.now || []).map(fmtRequest).join('; ') || (p.skipped ? '(skipped: ' + p.skipped + ')' : '(nothing)')));
    if (p.error) d.append(el('div', { class: 'error' }, 'error: ' + p.error));
    if (p.stale) d.append(el('div', { class: 'warn' }, 'STALE: the lane has a newer alert ', alertLink(p.stale)));
    return d;
  }

  function resolveBlock(a) {
    const how = el('select', { id: 'resolve-as' },
      el('option', { value: 'executed' }, 'executed (the bracket is at the broker)'),
      el('option', { value: 'failed' }, 'failed (it is not)'));
    const note = el('input', { type: 'text', id: 'resolve-note', placeholder: 'what you saw in the account' });
    const out = el('p', { id: 'resolve-result' });
    const go = el('button', { type: 'button', id: 'resolve' }, 'Resolve');
    go.addEventListener('click', () => guard((async () => {
      if (!window.confirm('Mark the unknown execution(s) of ' + a.id + ' as ' + how.value + '?')) return;
      const r = await api('/api/alerts/' + encodeURIComponent(a.id) + '/resolve',
        { json: { status: how.value, note: note.value } });
      out.textContent = r.ok ? 'Resolved: ' + r.body.status : 'Refused: ' + errorText(r);
      if (r.ok) await refreshDetail();
    })(), 'Resolve'));
    return el('div', { class: 'actions resolve' },
      el('h3', {}, 'Resolve an unknown outcome'),
      el('p', { class: 'hint' }, 'Check the account at the broker (look for the OCO id) first.'),
      how, ' ', note, ' ', go, out);
  }

  // ------------------------------------------------------------------------------------------------ start

  function init() {
    $('sign-in-form').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', () => signOut(''));
    $('kill-toggle').addEventListener('click', () => guard(toggleKill(), 'Kill switch'));
    $('filters').addEventListener('submit', (ev) => ev.preventDefault());
    for (const id of ['filter-status', 'filter-source', 'filter-instrument', 'filter-since', 'filter-refusals']) {
      $(id).addEventListener('change', () => guard(refreshLog(), 'Alert log'));
    }
    $('alert-back').addEventListener('click', (ev) => {
      ev.preventDefault();
      location.hash = '';
    });
    window.addEventListener('hashchange', route);
    if (token()) start();
    else signOut('');
  }

  init();
})();
