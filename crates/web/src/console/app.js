// Switchboard console: a plain ES module, no build step. Every value from the API is put on the
// page with textContent (never parsed as HTML).

const $ = (selector) => document.querySelector(selector);
const session = { role: null, secret: null };

class Problem extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || `HTTP ${status}`);
    this.status = status;
    this.errors = (body && body.errors) || [];
  }
  describe() {
    const fields = this.errors.map((e) => `${e.field}: ${e.message}`);
    return [this.message, ...fields].join(' — ');
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${session.secret}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { detail: text }; }
  }
  if (!response.ok) throw new Problem(response.status, data);
  return data;
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// UUIDv7 ids begin with a timestamp: their random end tells them apart.
const shortId = (id) => (id ? `…${id.slice(-8)}` : '—');
const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '—');
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
const say = (target, text, ok = true) => {
  const node = $(target);
  node.textContent = text;
  node.className = ok ? 'ok' : 'error';
};

// ---------------------------------------------------------------- sign in

async function signIn(role, secret) {
  session.role = role;
  session.secret = secret;
  if (role === 'user') await api('GET', '/v1/concurrency');
  else await api('GET', '/v1/admin/diagnostics');
  sessionStorage.setItem('switchboard', JSON.stringify({ role, secret }));
  $('#sign-in').hidden = true;
  $('#sign-out').hidden = false;
  $('#who').textContent = role === 'user' ? 'Signed in as a user' : 'Signed in as the operator';
  if (role === 'user') startUserView();
  else startOperatorView();
}

function signOut() {
  sessionStorage.removeItem('switchboard');
  window.location.reload();
}

// ---------------------------------------------------------------- user view

const calls = new Map();
let events = null;
let lastEventId = null;
let gaugeTimer = null;

async function startUserView() {
  $('#user-view').hidden = false;
  $('#live').hidden = false;
  await Promise.all([loadCalls(), loadGauges(), loadMyCampaigns(), loadUsage(), loadEndpoints()]);
  connectEvents();
}

// ---------------------------------------------------------------- campaigns and usage

let openCampaign = null;
let campaignTimer = null;
const money = (value) => (value === null || value === undefined ? '—' : Number(value).toFixed(2));
const percent = (rate) => (rate === null || rate === undefined ? '—' : `${(rate * 100).toFixed(1)}%`);

function progressOf(campaign) {
  const s = campaign.stats;
  const settled = s.done + s.exhausted + s.skipped_dnc + s.canceled;
  return { settled, total: s.total, text: `${settled} of ${s.total} contacts settled` };
}

function statusText(campaign) {
  return campaign.pause_reason === 'budget_exhausted' ? 'paused (budget spent)' : campaign.status;
}

async function loadMyCampaigns() {
  const page = await api('GET', '/v1/campaigns?limit=50');
  $('#my-campaigns tbody').replaceChildren(...page.data.map((campaign) => {
    const progress = progressOf(campaign);
    const open = el('button', { type: 'button', class: 'secondary', text: 'Open',
      'aria-label': `Open campaign ${campaign.name}`, onclick: () => showCampaign(campaign.id) });
    return el('tr', { dataset: { campaignId: campaign.id } },
      el('td', { text: campaign.name }),
      el('td', { class: 'status', text: statusText(campaign) }),
      el('td', { text: progress.text }),
      el('td', {}, open));
  }));
}

async function showCampaign(id) {
  openCampaign = id;
  const [campaign, report] = await Promise.all([
    api('GET', `/v1/campaigns/${id}`), api('GET', `/v1/campaigns/${id}/report`)]);
  $('#campaign-page').hidden = false;
  $('#campaign-page-title').textContent = `${campaign.name}: ${statusText(campaign)}`;
  const progress = progressOf(campaign);
  $('#campaign-progress').max = Math.max(progress.total, 1);
  $('#campaign-progress').value = progress.settled;
  $('#campaign-progress-text').textContent = progress.text;
  const figures = [
    ['Calls', report.calls.total],
    ['Connected', `${report.calls.connected} (${percent(report.calls.connect_rate)})`],
    ['Voicemail', `${report.calls.voicemail} (${percent(report.calls.voicemail_rate)})`],
    ['Average attempts', report.contacts.average_attempts === null ? '—' : report.contacts.average_attempts.toFixed(2)],
    ['Talk time (min)', (report.talk_time.total_seconds / 60).toFixed(1)],
    ['Cost', money(report.cost.total)],
    ['Average cost per call', money(report.cost.average_per_call)],
    ['Budget', campaign.budget === null ? 'none' : money(campaign.budget)],
  ];
  $('#campaign-report').replaceChildren(...figures.map(([name, value]) =>
    el('div', {}, el('dt', { text: name }), el('dd', { text: String(value) }))));
}

function refreshCampaignsSoon() {
  clearTimeout(campaignTimer);
  campaignTimer = setTimeout(() => {
    loadMyCampaigns().catch(() => {});
    loadUsage().catch(() => {});
    if (openCampaign) showCampaign(openCampaign).catch(() => {});
  }, 300);
}

// The export needs the API key, so it is fetched here and handed to the browser as a file.
async function downloadResults() {
  if (!openCampaign) return;
  say('#campaign-result', 'Preparing the export…');
  const response = await fetch(`/v1/campaigns/${openCampaign}/results.csv`,
    { headers: { Authorization: `Bearer ${session.secret}` } });
  if (!response.ok) {
    say('#campaign-result', `The export failed (HTTP ${response.status}).`, false);
    return;
  }
  const blob = await response.blob();
  const link = el('a', { href: URL.createObjectURL(blob), download: `campaign-${openCampaign}-results.csv` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  say('#campaign-result', `Downloaded ${blob.size} bytes of results.`);
}

async function loadUsage() {
  const usage = await api('GET', '/v1/usage?group_by=day');
  const t = usage.total;
  const totals = [['Calls', t.calls], ['Connected', t.connected_calls], ['Minutes', t.minutes.toFixed(1)], ['Cost', money(t.cost)]];
  $('#usage-totals').replaceChildren(...totals.map(([name, value]) =>
    el('div', { dataset: { figure: name.toLowerCase() } }, el('dt', { text: name }), el('dd', { text: String(value) }))));
  $('#usage tbody').replaceChildren(...usage.groups.map((group) => el('tr', {},
    el('td', { text: group.key }), el('td', { text: String(group.calls) }),
    el('td', { text: String(group.connected_calls) }), el('td', { text: group.minutes.toFixed(1) }),
    el('td', { text: money(group.cost) }))));
}

async function loadGauges() {
  const view = await api('GET', '/v1/concurrency');
  for (const type of ['direct', 'campaign']) {
    const usage = view[type];
    const gauge = $(`#gauge-${type}`);
    for (const field of ['active', 'limit', 'queued']) {
      gauge.querySelector(`[data-field="${field}"]`).textContent = String(usage[field]);
    }
    const meter = $(`#meter-${type}`);
    meter.max = Math.max(usage.limit, 1);
    meter.value = usage.active;
    meter.setAttribute('aria-valuetext', `${usage.active} of ${usage.limit} in use, ${usage.queued} queued`);
  }
}

function refreshGaugesSoon() {
  clearTimeout(gaugeTimer);
  gaugeTimer = setTimeout(() => loadGauges().catch(() => {}), 150);
}

async function loadCalls() {
  const page = await api('GET', '/v1/calls?limit=50');
  calls.clear();
  for (const call of page.data) calls.set(call.id, call);
  renderCalls();
}

function upsertCall(call) {
  const known = calls.get(call.id);
  if (known && Date.parse(known.updated_at) > Date.parse(call.updated_at)) return;
  calls.set(call.id, call);
  renderCalls();
}

function renderCalls() {
  const rows = [...calls.values()].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
  const body = $('#calls tbody');
  body.replaceChildren(...rows.slice(0, 100).map(callRow));
}

function callRow(call) {
  const actions = el('td');
  // Waiting in Switchboard (for its time or a slot), or placed at Bolna and not yet dialling: all
  // can be canceled.
  if (['scheduled', 'queued', 'placed'].includes(call.status)) {
    actions.append(el('button', {
      type: 'button', class: 'secondary', text: 'Cancel',
      'aria-label': `Cancel the call to ${call.recipient_phone_number}`,
      onclick: () => cancelCall(call.id),
    }));
  }
  return el('tr', { dataset: { callId: call.id } },
    el('td', { class: 'mono', title: call.id, text: shortId(call.id) }),
    el('td', { text: call.recipient_phone_number }),
    el('td', { text: call.call_type }),
    el('td', { class: 'status', dataset: { status: call.status },
      text: call.status === 'scheduled' ? `scheduled for ${when(call.scheduled_at)}` : call.status,
      title: call.provider_status ? `Bolna: ${call.provider_status}` : (call.error || '') }),
    el('td', { class: 'mono', text: call.bolna_execution_id || '—' }),
    el('td', { text: time(call.created_at) }),
    actions);
}

async function cancelCall(id) {
  try {
    upsertCall(await api('POST', `/v1/calls/${id}/cancel`));
    refreshGaugesSoon();
  } catch (problem) {
    say('#start-result', `Could not cancel: ${problem.describe ? problem.describe() : problem}`, false);
  }
}

async function startCall(form) {
  const data = new FormData(form);
  const body = { agent_id: data.get('agent_id').trim(), recipient_phone_number: data.get('recipient_phone_number').trim(),
    call_type: data.get('call_type') };
  const from = data.get('from_phone_number').trim();
  if (from) body.from_phone_number = from;
  // The browser's local time, sent with its offset (as an RFC 3339 UTC instant).
  const at = data.get('scheduled_at');
  if (at) body.scheduled_at = new Date(at).toISOString();
  try {
    const call = await api('POST', '/v1/calls', body);
    upsertCall(call);
    refreshGaugesSoon();
    say('#start-result', call.bolna_execution_id
      ? `Handed to Bolna (${call.status}).`
      : call.status === 'scheduled'
        ? `Scheduled for ${when(call.scheduled_at)}: it holds no slot until then.`
        : 'Queued: it starts as soon as a slot frees.');
  } catch (problem) {
    say('#start-result', `Not started: ${problem.describe ? problem.describe() : problem}`, false);
  }
}

function setLive(state) {
  const node = $('#live');
  node.dataset.state = state;
  node.textContent = state === 'live' ? 'Live' : 'Reconnecting…';
}

// EventSource cannot send Authorization: trade the key for a single-use ticket each time.
async function connectEvents() {
  if (events) events.close();
  let ticket;
  try {
    ticket = await api('POST', '/v1/events/tickets');
  } catch {
    setLive('reconnecting');
    setTimeout(connectEvents, 2000);
    return;
  }
  let url = `/v1/events?ticket=${encodeURIComponent(ticket.ticket)}`;
  if (lastEventId) url += `&last_event_id=${encodeURIComponent(lastEventId)}`;
  events = new EventSource(url);
  events.onopen = () => setLive('live');
  events.addEventListener('call.updated', (event) => {
    lastEventId = event.lastEventId;
    upsertCall(JSON.parse(event.data));
    refreshGaugesSoon();
  });
  events.addEventListener('campaign.updated', (event) => {
    lastEventId = event.lastEventId;
    refreshGaugesSoon();
    refreshCampaignsSoon();
  });
  events.addEventListener('reset', () => {
    // Events were missed for good: reload what the page shows.
    lastEventId = null;
    loadCalls().catch(() => {});
    refreshGaugesSoon();
  });
  events.onerror = () => {
    // The browser would retry with the used ticket: reconnect with a fresh one instead.
    events.close();
    setLive('reconnecting');
    setTimeout(connectEvents, 1000);
  };
}

// ---------------------------------------------------------------- operator view

async function startOperatorView() {
  $('#operator-view').hidden = false;
  await Promise.all([loadUsers(), refreshOperator()]);
  setInterval(() => refreshOperator().catch(() => {}), 3000);
}

async function refreshOperator() {
  await Promise.all([loadDiagnostics(), loadActiveCalls(), loadCampaigns()]);
}

const DIAGNOSTICS = [
  ['slots_held_over_an_hour', 'Stuck slots (held over an hour)'],
  ['slots_missing_execution_id', 'Slots missing an execution ID'],
  ['calls_non_terminal_too_long', 'Calls non-terminal too long'],
  ['unapplied_webhook_events', 'Unapplied webhook events'],
  ['oldest_unapplied_webhook_age_seconds', 'Oldest unapplied webhook (s)'],
  ['calls_waiting_for_reconciliation', 'Calls waiting for reconciliation'],
  ['queued_calls', 'Queued calls'],
  ['oldest_queued_age_seconds', 'Oldest queued call (s)'],
  ['scheduled_calls', 'Scheduled calls'],
  ['account_lines_in_use', 'Account lines in use'],
  ['account_lines', 'Account lines'],
  ['account_lines_configured', 'Account lines configured'],
  ['bolna_account_concurrency_max', "Bolna's account concurrency"],
  ['bolna_max_calls_per_minute', 'Bolna rate limit (calls/min)'],
  ['bolna_rate_remaining', 'Calls Bolna still takes this minute'],
  ['bolna_circuit_open', 'Bolna circuit open'],
];

async function loadDiagnostics() {
  const numbers = await api('GET', '/v1/admin/diagnostics');
  $('#diagnostics').replaceChildren(...DIAGNOSTICS.map(([key, label]) => {
    let value = numbers[key];
    if (typeof value === 'number' && !Number.isInteger(value)) value = value.toFixed(1);
    if (value === null || value === undefined) value = '—';
    return el('div', { dataset: { metric: key } }, el('dt', { text: label }), el('dd', { text: String(value) }));
  }));
}

async function loadActiveCalls() {
  const slots = await api('GET', '/v1/admin/active-calls');
  $('#active-calls tbody').replaceChildren(...slots.data.map((slot) => el('tr', { dataset: { callId: slot.id } },
    el('td', { class: 'mono', title: slot.id, text: shortId(slot.id) }),
    el('td', { class: 'mono', title: slot.user_id, text: shortId(slot.user_id) }),
    el('td', { text: slot.call_type }),
    el('td', { class: 'mono', text: slot.bolna_execution_id || 'missing' }),
    el('td', { text: `${Math.round(slot.age_seconds)} s` }),
    el('td', { text: time(slot.lease_expires_at) }),
    el('td', {}, el('button', {
      type: 'button', class: 'secondary', text: 'Force release',
      'aria-label': `Force-release the slot of call ${slot.id}`,
      onclick: () => release(slot.id),
    })))));
}

async function release(id) {
  try {
    await api('POST', `/v1/admin/active-calls/${id}/release`, { reason: 'released from the console' });
    say('#release-result', `Released the slot of call ${shortId(id)}.`);
  } catch (problem) {
    say('#release-result', `Not released: ${problem.describe ? problem.describe() : problem}`, false);
  }
  await refreshOperator();
}

async function loadUsers() {
  const users = await api('GET', '/v1/admin/users?limit=200');
  $('#users tbody').replaceChildren(...users.data.map(userRow));
}

function userRow(user) {
  const direct = el('input', { type: 'number', min: '0', max: '10000', value: String(user.direct_call_limit),
    'aria-label': `Direct call limit of ${user.name}` });
  const campaign = el('input', { type: 'number', min: '0', max: '10000', value: String(user.campaign_call_limit),
    'aria-label': `Campaign call limit of ${user.name}` });
  const save = async () => {
    try {
      const body = { direct_call_limit: Number(direct.value), campaign_call_limit: Number(campaign.value) };
      await api('PATCH', `/v1/admin/users/${user.id}`, body);
      say('#users-result', `Saved the limits of ${user.name}.`);
    } catch (problem) {
      say('#users-result', `Not saved: ${problem.describe ? problem.describe() : problem}`, false);
    }
  };
  return el('tr', { dataset: { userId: user.id } },
    el('td', { text: user.name }),
    el('td', { class: 'mono', text: user.id }),
    el('td', {}, direct),
    el('td', {}, campaign),
    el('td', {}, el('button', { type: 'button', text: 'Save', 'aria-label': `Save the limits of ${user.name}`, onclick: save })));
}

async function createUser(form) {
  const name = new FormData(form).get('name').trim();
  try {
    const created = await api('POST', '/v1/admin/users', { name });
    say('#users-result', `Created ${created.user.name}. Its API key, shown once: ${created.api_key}`);
    form.reset();
    await loadUsers();
  } catch (problem) {
    say('#users-result', `Not created: ${problem.describe ? problem.describe() : problem}`, false);
  }
}

async function loadCampaigns() {
  const page = await api('GET', '/v1/admin/campaigns?limit=50');
  $('#campaigns tbody').replaceChildren(...page.data.map((campaign) => {
    const s = campaign.stats;
    const finished = s.done + s.exhausted + s.skipped_dnc + s.canceled;
    const outcomes = Object.entries(s.by_outcome).map(([k, v]) => `${k} ${v}`).join(', ') || '—';
    return el('tr', { dataset: { campaignId: campaign.id } },
      el('td', { text: campaign.name }),
      el('td', { class: 'mono', title: campaign.user_id, text: shortId(campaign.user_id) }),
      el('td', { class: 'status', text: campaign.status }),
      el('td', {}, el('progress', { max: String(Math.max(s.total, 1)), value: String(finished),
        'aria-label': `${finished} of ${s.total} contacts finished` }), ` ${finished} / ${s.total}`),
      el('td', { text: outcomes }));
  }));
}

// ---------------------------------------------------------------- webhook endpoints

let openEndpoint = null;

async function loadEndpoints() {
  const list = await api('GET', '/v1/webhook-endpoints');
  $('#endpoints tbody').replaceChildren(...list.data.map((endpoint) => {
    const state = endpoint.disabled ? `disabled (${endpoint.disabled_reason})` : 'enabled';
    const show = el('button', { type: 'button', class: 'secondary', text: 'Deliveries',
      'aria-label': `Deliveries to ${endpoint.url}`, onclick: () => showDeliveries(endpoint.id).catch(() => {}) });
    const ping = el('button', { type: 'button', class: 'secondary', text: 'Send test',
      'aria-label': `Send a test ping to ${endpoint.url}`, onclick: () => sendPing(endpoint.id) });
    const toggle = el('button', { type: 'button', class: 'secondary', text: endpoint.disabled ? 'Enable' : 'Disable',
      onclick: () => setEndpointDisabled(endpoint.id, !endpoint.disabled) });
    return el('tr', { dataset: { endpointId: endpoint.id } },
      el('td', { class: 'mono', text: endpoint.url }),
      el('td', { text: endpoint.events.join(', ') }),
      el('td', { class: 'status', text: state }),
      el('td', {}, show, ' ', ping, ' ', toggle));
  }));
}

async function addEndpoint(form) {
  const data = new FormData(form);
  try {
    const created = await api('POST', '/v1/webhook-endpoints', { url: data.get('url').trim(), events: data.getAll('events') });
    say('#endpoint-result', `Added. Its signing secret, shown once: ${created.secret}`);
    form.querySelector('#endpoint-url').value = '';
    await loadEndpoints();
    await showDeliveries(created.endpoint.id);
  } catch (problem) {
    say('#endpoint-result', `Not added: ${problem.describe ? problem.describe() : problem}`, false);
  }
}

async function setEndpointDisabled(id, disabled) {
  try {
    await api('PATCH', `/v1/webhook-endpoints/${id}`, { disabled });
    await loadEndpoints();
  } catch (problem) {
    say('#endpoint-result', String(problem.message), false);
  }
}

async function sendPing(id) {
  try {
    const delivery = await api('POST', `/v1/webhook-endpoints/${id}/test`);
    say('#endpoint-result', `Test ping queued as ${delivery.webhook_id}.`);
    setTimeout(() => showDeliveries(id).catch(() => {}), 800);
  } catch (problem) {
    say('#endpoint-result', String(problem.message), false);
  }
}

async function showDeliveries(id) {
  openEndpoint = id;
  const page = await api('GET', `/v1/webhook-endpoints/${id}/deliveries?limit=20`);
  $('#deliveries-page').hidden = false;
  $('#deliveries-title').textContent = 'Deliveries';
  $('#deliveries tbody').replaceChildren(...page.data.map((delivery) => {
    const last = delivery.attempt_log[0];
    const answer = !last ? '—' : last.status_code !== null ? `HTTP ${last.status_code}` : (last.error || '—');
    const retry = el('button', { type: 'button', class: 'secondary', text: 'Retry',
      'aria-label': `Retry ${delivery.webhook_id}`, onclick: () => retryDelivery(id, delivery.id) });
    return el('tr', { dataset: { deliveryId: String(delivery.id) } },
      el('td', { class: 'mono', text: delivery.webhook_id }),
      el('td', { text: delivery.event_type }),
      el('td', { class: 'status', dataset: { status: delivery.status }, text: delivery.status }),
      el('td', { text: String(delivery.attempts) }),
      el('td', { title: last && last.response_excerpt ? last.response_excerpt : '', text: answer }),
      el('td', { text: last ? `${last.latency_ms} ms` : '—' }),
      el('td', {}, delivery.status === 'sending' ? '' : retry));
  }));
}

async function retryDelivery(endpoint, delivery) {
  try {
    const armed = await api('POST', `/v1/webhook-endpoints/${endpoint}/deliveries/${delivery}/retry`);
    say('#deliveries-result', `${armed.webhook_id} will be sent again now.`);
    setTimeout(() => showDeliveries(endpoint).catch(() => {}), 800);
  } catch (problem) {
    say('#deliveries-result', String(problem.message), false);
  }
}

async function replay(form) {
  if (!openEndpoint) return;
  const since = new Date(new FormData(form).get('since'));
  try {
    const replayed = await api('POST', `/v1/webhook-endpoints/${openEndpoint}/replay`, { since: since.toISOString() });
    say('#deliveries-result', `${replayed.deliveries} ${replayed.deliveries === 1 ? 'delivery' : 'deliveries'} will be sent again.`);
    setTimeout(() => showDeliveries(openEndpoint).catch(() => {}), 800);
  } catch (problem) {
    say('#deliveries-result', `Not replayed: ${problem.describe ? problem.describe() : problem}`, false);
  }
}

// ---------------------------------------------------------------- wiring

function wire() {
  $('#sign-in-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    try {
      await signIn(form.get('role'), form.get('secret').trim());
    } catch (problem) {
      session.secret = null;
      say('#sign-in-error', problem.status === 401 ? 'That key or token was not accepted.' : String(problem.message), false);
    }
  });
  $('#sign-out').addEventListener('click', signOut);
  $('#start-form').addEventListener('submit', (event) => { event.preventDefault(); startCall(event.target); });
  $('#campaign-refresh').addEventListener('click', () => { if (openCampaign) showCampaign(openCampaign).catch(() => {}); loadUsage().catch(() => {}); });
  $('#campaign-download').addEventListener('click', () => downloadResults().catch((problem) => say('#campaign-result', String(problem.message), false)));
  $('#create-user-form').addEventListener('submit', (event) => { event.preventDefault(); createUser(event.target); });
  $('#endpoint-form').addEventListener('submit', (event) => { event.preventDefault(); addEndpoint(event.target); });
  $('#replay-form').addEventListener('submit', (event) => { event.preventDefault(); replay(event.target); });
  $('#deliveries-refresh').addEventListener('click', () => { if (openEndpoint) showDeliveries(openEndpoint).catch(() => {}); });
  const saved = sessionStorage.getItem('switchboard');
  if (saved) {
    const { role, secret } = JSON.parse(saved);
    signIn(role, secret).catch(() => sessionStorage.removeItem('switchboard'));
  }
}

wire();
