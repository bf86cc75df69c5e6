// The stock board: Amplify JS v6 in the browser, talking to the blood bank GraphQL API exactly as a
// real Amplify web app does (`client.graphql` for queries, mutations and subscriptions; the AppSync
// real-time protocol on <endpoint>/realtime for the subscription).
//
// Bundle: `make web` (or `node client-examples/web/build.mjs`) writes dist/app.js.
// Configuration, first match wins: `?api=<GraphQL URL>` in the page's URL, `config.json` beside the
// page ({"endpoint": "...", "region": "..."}), else the local stack https://127.0.0.1:8000/graphql.
// Sign-in: the local stack's tokens (`bloodbank token --as hospital`), pasted into the form or given
// as `#token=...` (removed from the address bar at once). The token lives in memory only and is
// never logged. On AWS use Amplify Auth with the Cognito user pool instead (README.md).
import { Amplify } from 'aws-amplify';
import { CONNECTION_STATE_CHANGE, ConnectionState, generateClient } from 'aws-amplify/api';
import { Hub } from 'aws-amplify/utils';

const DEFAULT_ENDPOINT = 'https://127.0.0.1:8000/graphql';

const BLOOD_GROUPS = ['O_NEG', 'O_POS', 'A_NEG', 'A_POS', 'B_NEG', 'B_POS', 'AB_NEG', 'AB_POS'];
const COMPONENTS = ['WHOLE_BLOOD', 'RED_CELLS', 'PLATELETS', 'PLASMA', 'CRYO'];
const URGENCIES = ['ROUTINE', 'URGENT', 'EMERGENCY'];
const STATUS_TEXT = { GREEN: 'Green: enough', AMBER: 'Amber: low', RED: 'Red: shortage' };
const STATUS_ICON = { GREEN: '●', AMBER: '▲', RED: '■' };

// What a person should do about each `extensions.code` the API returns.
const ERROR_MESSAGES = {
  UNAUTHENTICATED: 'You are not signed in, or your sign-in has expired. Sign in again.',
  FORBIDDEN: 'Your account is not allowed to do this.',
  BAD_USER_INPUT: 'Some details are not valid. Correct them and try again.',
  NOT_FOUND: 'That record does not exist (any more).',
  CONFLICT: 'Someone changed this at the same time. Reload and try again.',
  RATE_LIMITED: 'Too many requests. Wait a moment and try again.',
  INTERNAL_SERVER_ERROR: 'Something went wrong on our side. Try again; if it keeps failing, contact the blood service.',
  NETWORK: 'The API could not be reached. Check your connection and try again.',
};

const STOCK = /* GraphQL */ `
  query Board {
    listSites { id name }
    stockLevels { siteId bloodGroup component available reserved threshold daysOfSupply status }
  }`;

const ALERTS = /* GraphQL */ `
  subscription Alerts {
    onShortageAlert {
      id siteId bloodGroup component status previousStatus available threshold daysOfSupply raisedAt
    }
  }`;

const CREATE_REQUEST = /* GraphQL */ `
  mutation Order($input: CreateBloodRequestInput!) {
    createBloodRequest(input: $input) {
      id status bloodGroup component quantity urgency neededBy allocated outstanding siteId
    }
  }`;

const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  client: null,
  subscription: null,
  sites: new Map(),
  levels: new Map(), // rowKey -> StockLevel, as last loaded or alerted
  changed: null, // rowKey of the level the last alert changed
  requestToken: newRequestToken(),
};

const label = {
  group: (g) => g.replace('_NEG', '−').replace('_POS', '+'),
  component: (c) => c.charAt(0) + c.slice(1).toLowerCase().replace('_', ' '),
  site: (id) => state.sites.get(id) ?? id,
  days: (d) => (d === null || d === undefined ? '—' : d.toFixed(1)),
};

function newRequestToken() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

async function loadConfig() {
  const params = new URLSearchParams(location.search);
  let file = {};
  try {
    const response = await fetch('config.json', { cache: 'no-store' });
    if (response.ok) file = await response.json();
  } catch {
    // no config.json: the defaults
  }
  return {
    endpoint: params.get('api') ?? file.endpoint ?? DEFAULT_ENDPOINT,
    region: params.get('region') ?? file.region ?? 'us-east-1',
  };
}

/** A token from `#token=` or `?token=`, then removed from the address bar (and so from history). */
function tokenFromUrl() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const query = new URLSearchParams(location.search);
  const token = hash.get('token') ?? query.get('token');
  if (token) {
    hash.delete('token');
    query.delete('token');
    const q = query.toString();
    const h = hash.toString();
    history.replaceState(null, '', `${location.pathname}${q ? `?${q}` : ''}${h ? `#${h}` : ''}`);
  }
  return token;
}

/** The first error of a failed `client.graphql` call as {code, message, fields}, without internals. */
function describeError(error) {
  const first = error?.errors?.[0];
  if (!first) return { code: 'NETWORK', message: ERROR_MESSAGES.NETWORK, detail: '', fields: [] };
  const code = first.extensions?.code ?? 'INTERNAL_SERVER_ERROR';
  const human = ERROR_MESSAGES[code] ?? ERROR_MESSAGES.INTERNAL_SERVER_ERROR;
  // The API's messages are written for people (and masked when internal); show them as detail.
  const requestId = first.extensions?.requestId;
  const detail =
    code === 'INTERNAL_SERVER_ERROR' ? (requestId ? `quote request id ${requestId}` : '') : String(first.message ?? '');
  return { code, message: human, detail, fields: first.extensions?.fields ?? [] };
}

function showError(element, error) {
  const { code, message, detail } = describeError(error);
  element.replaceChildren();
  element.dataset.code = code;
  const strong = document.createElement('strong');
  strong.textContent = message;
  element.append(strong);
  if (detail) element.append(document.createTextNode(` (${detail})`));
  const codeEl = document.createElement('span');
  codeEl.className = 'code';
  codeEl.textContent = code;
  element.append(' ', codeEl);
  element.hidden = false;
  // Log the code only: the error object may carry request details.
  console.warn(`bloodbank API error: ${code}`);
}

function statusBadge(status) {
  const badge = document.createElement('span');
  badge.className = `status status-${status.toLowerCase()}`;
  badge.dataset.status = status;
  const icon = document.createElement('span');
  icon.setAttribute('aria-hidden', 'true');
  icon.textContent = STATUS_ICON[status] ?? '';
  badge.append(icon, ` ${STATUS_TEXT[status] ?? status}`);
  return badge;
}

const rowKey = (level) => `${level.siteId}|${level.bloodGroup}|${level.component}`;

/** A level nobody stocks or watches: no units, none reserved, no par level, not in shortage. */
const unstocked = (l) => l.available === 0 && !l.reserved && l.threshold === 0 && l.status === 'GREEN';

function cell(row, name, text, className) {
  const td = document.createElement('td');
  td.dataset.label = name;
  if (className) td.className = className;
  if (text instanceof Node) td.append(text);
  else td.textContent = text;
  row.append(td);
  return td;
}

function renderRow(level) {
  const row = document.createElement('tr');
  row.dataset.key = rowKey(level);
  row.dataset.status = level.status;
  const th = document.createElement('th');
  th.scope = 'row';
  th.className = 'group';
  th.textContent = label.group(level.bloodGroup);
  row.append(th);
  cell(row, 'Component', label.component(level.component), 'component');
  cell(row, 'Available', String(level.available), 'num available');
  cell(row, 'Reserved', level.reserved === undefined ? '—' : String(level.reserved), 'num');
  cell(row, 'Par level', String(level.threshold), 'num threshold');
  cell(row, 'Days of supply', label.days(level.daysOfSupply), 'num');
  cell(row, 'Status', statusBadge(level.status), 'status-cell');
  return row;
}

/** The board from state.levels and the filters: one <tbody> a site, headed by the site's name. */
function renderBoard() {
  const filter = $('board-filter').elements;
  const site = filter.site.value;
  const shortOnly = filter.shortOnly.checked;
  const showUnstocked = filter.showUnstocked.checked;
  const all = [...state.levels.values()];
  const shown = all.filter(
    (l) => (!site || l.siteId === site) && (!shortOnly || l.status !== 'GREEN') && (showUnstocked || !unstocked(l)),
  );
  const bySite = new Map();
  for (const level of shown) {
    if (!bySite.has(level.siteId)) bySite.set(level.siteId, []);
    bySite.get(level.siteId).push(level);
  }
  const order = (l) => BLOOD_GROUPS.indexOf(l.bloodGroup) * 10 + COMPONENTS.indexOf(l.component);
  const bodies = [...bySite.entries()]
    .sort(([a], [b]) => label.site(a).localeCompare(label.site(b)))
    .map(([siteId, levels]) => {
      const body = document.createElement('tbody');
      body.dataset.site = siteId;
      const head = document.createElement('tr');
      head.className = 'site-row';
      const th = document.createElement('th');
      th.scope = 'rowgroup';
      th.colSpan = 7;
      th.textContent = label.site(siteId);
      head.append(th);
      body.append(head, ...levels.sort((a, b) => order(a) - order(b)).map(renderRow));
      return body;
    });
  for (const old of $('board').querySelectorAll('tbody')) old.remove();
  $('board').append(...bodies);
  if (state.changed) {
    document.querySelector(`#board tr[data-key="${CSS.escape(state.changed)}"]`)?.classList.add('changed');
  }
  const short = shown.filter((l) => l.status !== 'GREEN').length;
  $('board-status').textContent = `${shown.length} of ${all.length} stock levels shown, ${short} amber or red.`;
}

function fillSites() {
  const select = $('site-filter');
  for (const option of [...select.options].slice(1)) option.remove();
  const sites = [...state.sites.entries()].sort(([, a], [, b]) => a.localeCompare(b));
  fillSelect(select, sites.map(([id]) => id), label.site);
}

async function loadBoard() {
  $('board-status').textContent = 'Loading stock…';
  try {
    const { data } = await state.client.graphql({ query: STOCK, authToken: state.token });
    state.sites = new Map(data.listSites.map((s) => [s.id, s.name]));
    state.levels = new Map(data.stockLevels.map((level) => [rowKey(level), level]));
    fillSites();
    renderBoard();
    return true;
  } catch (error) {
    showError($('signin-error'), error);
    $('board-status').textContent = 'The stock could not be loaded.';
    return false;
  }
}

function applyAlert(alert) {
  const key = rowKey(alert);
  const { siteId, bloodGroup, component, status, available, threshold, daysOfSupply } = alert;
  const level = { ...state.levels.get(key), siteId, bloodGroup, component, status, available, threshold, daysOfSupply };
  state.levels.set(key, level);
  state.changed = key;
  renderBoard();

  const item = document.createElement('li');
  item.className = `alert alert-${alert.status.toLowerCase()}`;
  item.dataset.key = key;
  item.dataset.status = alert.status;
  const when = new Date(alert.raisedAt);
  const time = document.createElement('time');
  time.dateTime = alert.raisedAt;
  time.textContent = when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const what = document.createElement('span');
  what.className = 'what';
  what.textContent = `${label.site(alert.siteId)}: ${label.group(alert.bloodGroup)} ${label.component(alert.component)}`;
  const detail = document.createElement('span');
  detail.className = 'detail';
  detail.textContent = `${alert.available} available, par level ${alert.threshold} (was ${alert.previousStatus})`;
  item.append(statusBadge(alert.status), ' ', what, ' ', detail, ' ', time);
  $('alerts').prepend(item);
  $('alerts-empty').hidden = true;
}

function setLive(connectionState) {
  const live = $('live');
  const connected = connectionState === ConnectionState.Connected;
  live.dataset.state = connected ? 'connected' : connectionState === ConnectionState.Disconnected ? 'offline' : 'connecting';
  $('live-text').textContent = connected ? 'Live alerts: connected' : `Live alerts: ${connectionState.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase()}`;
}

function subscribe() {
  state.subscription?.unsubscribe();
  state.subscription = state.client.graphql({ query: ALERTS, authToken: state.token }).subscribe({
    next: ({ data }) => applyAlert(data.onShortageAlert),
    error: (error) => showError($('signin-error'), error),
  });
}

async function signIn(token) {
  state.token = token.trim();
  $('signin-error').hidden = true;
  if (!(await loadBoard())) {
    state.token = null;
    return;
  }
  $('signin-form').hidden = true;
  $('signed-in').hidden = false;
  $('token').value = '';
  subscribe();
}

function signOut() {
  state.subscription?.unsubscribe();
  state.subscription = null;
  state.token = null;
  state.levels.clear();
  state.changed = null;
  for (const old of $('board').querySelectorAll('tbody')) old.remove();
  $('board-status').textContent = 'Sign in to see the stock.';
  $('signin-form').hidden = false;
  $('signed-in').hidden = true;
}

function fillSelect(select, values, text) {
  for (const value of values) {
    const option = document.createElement('option');
    option.value = value;
    option.textContent = text(value);
    select.append(option);
  }
}

function clearFieldErrors(form) {
  for (const element of form.querySelectorAll('[aria-invalid]')) element.removeAttribute('aria-invalid');
  for (const p of form.querySelectorAll('.field-error')) p.textContent = '';
}

function markField(form, name, message) {
  const input = form.elements.namedItem(name);
  if (!input) return false;
  input.setAttribute('aria-invalid', 'true');
  $(`${name}-error`).textContent = message;
  return true;
}

/** The form's values as CreateBloodRequestInput, or the problems the browser can see itself. */
function readRequest(form) {
  const problems = [];
  const values = Object.fromEntries(new FormData(form));
  if (!values.bloodGroup) problems.push(['bloodGroup', 'Choose the patient\'s blood group.']);
  if (!values.component) problems.push(['component', 'Choose a component.']);
  const quantity = Number(values.quantity);
  if (!Number.isInteger(quantity) || values.quantity === '') problems.push(['quantity', 'Enter a whole number of units.']);
  const input = {
    bloodGroup: values.bloodGroup,
    component: values.component,
    quantity,
    urgency: values.urgency || 'ROUTINE',
    clientRequestToken: state.requestToken,
  };
  if (values.neededBy) {
    const when = new Date(values.neededBy); // datetime-local is the browser's local time
    if (Number.isNaN(when.getTime())) problems.push(['neededBy', 'Enter a date and time.']);
    else input.neededBy = when.toISOString();
  }
  return { input, problems };
}

function showRequest(request) {
  const result = $('request-result');
  result.replaceChildren();
  const title = document.createElement('p');
  title.className = 'created';
  title.append('Order placed: ');
  const id = document.createElement('code');
  id.className = 'request-id';
  id.textContent = request.id;
  title.append(id);
  const dl = document.createElement('dl');
  const facts = [
    ['Status', request.status],
    ['Order', `${request.quantity} × ${label.group(request.bloodGroup)} ${label.component(request.component)}`],
    ['Priority', request.urgency],
    ['Needed by', new Date(request.neededBy).toLocaleString()],
    ['Allocated', `${request.allocated} of ${request.quantity} (${request.outstanding} outstanding)`],
    ['Supplied by', label.site(request.siteId)],
  ];
  for (const [term, value] of facts) {
    const dt = document.createElement('dt');
    dt.textContent = term;
    const dd = document.createElement('dd');
    dd.textContent = value;
    if (term === 'Status') dd.className = 'request-status';
    dl.append(dt, dd);
  }
  result.append(title, dl);
}

async function submitRequest(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const errorBox = $('request-error');
  clearFieldErrors(form);
  errorBox.hidden = true;
  if (!state.token) {
    showError(errorBox, { errors: [{ message: 'Sign in first.', extensions: { code: 'UNAUTHENTICATED' } }] });
    return;
  }
  const { input, problems } = readRequest(form);
  if (problems.length) {
    for (const [name, message] of problems) markField(form, name, message);
    form.querySelector('[aria-invalid]')?.focus();
    return;
  }
  const button = $('request-submit');
  button.disabled = true;
  try {
    const { data } = await state.client.graphql({ query: CREATE_REQUEST, variables: { input }, authToken: state.token });
    showRequest(data.createBloodRequest);
    state.requestToken = newRequestToken(); // the next order is a new one; a retry of this one is not
    form.reset();
  } catch (error) {
    const described = describeError(error);
    for (const { field, message } of described.fields) markField(form, field.replace(/^input\./, ''), message);
    showError(errorBox, error);
    if (described.code === 'BAD_USER_INPUT') state.requestToken = newRequestToken(); // new input, new token
  } finally {
    button.disabled = false;
  }
}

async function main() {
  const config = await loadConfig();
  // defaultAuthMode 'lambda' sends `authToken` as the Authorization header, as the API expects of a
  // Cognito access token (over HTTP and in the real-time handshake). With Amplify Auth configured
  // (Auth.Cognito), use 'userPool' and drop authToken: Amplify then sends the signed-in user's token.
  Amplify.configure({ API: { GraphQL: { endpoint: config.endpoint, region: config.region, defaultAuthMode: 'lambda' } } });
  state.client = generateClient();
  Hub.listen('api', ({ payload }) => {
    if (payload.event === CONNECTION_STATE_CHANGE) setLive(payload.data.connectionState);
  });

  fillSelect($('bloodGroup'), BLOOD_GROUPS, label.group);
  fillSelect($('component'), COMPONENTS, label.component);
  fillSelect($('urgency'), URGENCIES, (u) => u.charAt(0) + u.slice(1).toLowerCase());
  $('request-form').addEventListener('submit', submitRequest);
  $('signin-form').addEventListener('submit', (event) => {
    event.preventDefault();
    signIn($('token').value);
  });
  $('signout').addEventListener('click', signOut);
  $('board-filter').addEventListener('change', renderBoard);
  $('board-filter').addEventListener('submit', (event) => event.preventDefault());
  document.body.dataset.ready = 'true';

  const token = tokenFromUrl();
  if (token) await signIn(token);
  // A link with #token= opened on the page already (a same-document navigation, no reload).
  addEventListener('hashchange', () => {
    const next = tokenFromUrl();
    if (next) signIn(next);
  });
}

main();
