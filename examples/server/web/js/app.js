// Ticketyboo web UI: a hash router, the account bar and the live event stream.
import { Api } from './api.js';
import { h, toast } from './ui.js';
import { views } from './views.js';

const viewEl = document.getElementById('view');
const accountEl = document.getElementById('account');
const liveEl = document.getElementById('live');

const app = {
  user: null,

  navigate(hash) {
    if (location.hash === hash) render();
    else location.hash = hash;
  },

  setUser(user) {
    app.user = user;
    renderAccount();
  },

  // Send a signed-out visitor to sign in, and back here afterwards.
  requireUser() {
    if (app.user) return true;
    const here = location.hash.replace(/^#/, '') || '/';
    app.navigate(`#/signin?next=${encodeURIComponent(here)}`);
    return false;
  },
};

// ---- routing -----------------------------------------------------------------

const routes = [
  [/^\/$/, 'browse'],
  [/^\/sell$/, 'sell'],
  [/^\/mine$/, 'mine'],
  [/^\/orders$/, 'orders'],
  [/^\/orders\/([^/]+)$/, 'checkout'],
  [/^\/tickets\/([^/]+)$/, 'ticket'],
  [/^\/signin$/, 'signin'],
  [/^\/signup$/, 'signup'],
];

let current = null;
let renderSeq = 0;

async function render() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = raw.split('?');
  const params = new URLSearchParams(query);
  let name = 'notFound';
  let args = [];
  for (const [re, view] of routes) {
    const m = path.match(re);
    if (m) {
      name = view;
      args = m.slice(1).map(decodeURIComponent);
      break;
    }
  }
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === name || (name === 'checkout' && a.dataset.nav === 'orders'));
  }
  const seq = ++renderSeq;
  if (current && current.dispose) current.dispose();
  current = null;
  let next;
  try {
    next = await views[name]({ app, args, params });
  } catch (err) {
    next = { el: h('div', { class: 'card empty' }, h('h3', {}, 'Something went wrong'), h('p', {}, err.message)) };
  }
  if (seq !== renderSeq || !next) {
    if (next && next.dispose) next.dispose();
    return; // a newer navigation won
  }
  current = next;
  viewEl.replaceChildren(next.el);
  document.title = next.title ? `${next.title} · Ticketyboo` : 'Ticketyboo · resale tickets';
}

// ---- account bar --------------------------------------------------------------

function renderAccount() {
  if (!app.user) {
    accountEl.replaceChildren(
      h('a', { class: 'btn ghost sm', href: '#/signin', 'data-testid': 'nav-signin' }, 'Sign in'),
      h('a', { class: 'btn sm', href: '#/signup', 'data-testid': 'nav-signup' }, 'Sign up'),
    );
    return;
  }
  const out = h('button', { class: 'btn ghost sm', type: 'button', 'data-testid': 'signout' }, 'Sign out');
  out.addEventListener('click', async () => {
    try {
      await Api.signOut();
    } catch (err) {
      toast(err.message, 'error');
      return;
    }
    app.setUser(null);
    toast('Signed out. See you soon!');
    app.navigate('#/');
  });
  accountEl.replaceChildren(
    h('span', { class: 'avatar', 'aria-hidden': 'true' }, app.user.email.slice(0, 1).toUpperCase()),
    h('span', { class: 'account-email', 'data-testid': 'account-email', title: app.user.email }, app.user.email),
    out,
  );
}

// ---- live updates ---------------------------------------------------------------

function connectLive() {
  const source = new EventSource('/api/events/stream');
  const setLive = (on) => {
    liveEl.classList.toggle('on', on);
    liveEl.querySelector('.live-text').textContent = on ? 'Live' : 'Reconnecting';
    liveEl.dataset.state = on ? 'on' : 'off';
  };
  source.addEventListener('open', () => setLive(true));
  source.addEventListener('error', () => setLive(false)); // EventSource retries by itself
  source.addEventListener('message', (msg) => {
    let ev;
    try {
      ev = JSON.parse(msg.data);
    } catch {
      return;
    }
    if (current && current.onEvent) current.onEvent(ev);
  });
}

// ---- start ------------------------------------------------------------------------

async function start() {
  try {
    app.user = await Api.currentUser();
  } catch {
    app.user = null;
  }
  renderAccount();
  window.addEventListener('hashchange', render);
  connectLive();
  await render();
}

start();
