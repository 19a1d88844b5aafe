// The pages.  Each view is async ({app, args, params}) -> {el, title?, onEvent?, dispose?}.
// onEvent receives the live notices {seq, type, subject, id, version} and refetches
// what it shows; the notices carry no data themselves.
import { Api, serverNow } from './api.js';
import {
  h, icon, money, currencySymbol, tint, badge, orderBadge, toast, formatDuration, busy,
  showFieldErrors, emptyState,
} from './ui.js';

const TEST_CARDS = [
  ['tok_visa', 'Visa •••• 4242 — payment succeeds'],
  ['tok_chargeDeclined', 'Card declined'],
  ['tok_chargeDeclinedInsufficientFunds', 'Declined: insufficient funds'],
  ['tok_timeout', 'Network timeout — the answer arrives later'],
];

function ago(iso) {
  const s = Math.max(0, (serverNow() - Date.parse(iso)) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString('en-US', { month: 'short', day: 'numeric' });
}

// Run `fn` at most once per `ms`, trailing: bursts of events cause one refetch.
function coalesce(fn, ms = 120) {
  let timer = null;
  const run = () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
  run.cancel = () => clearTimeout(timer);
  return run;
}

// Up to two initials of a title, for the card's colour band.
function monogram(title) {
  const words = title.replace(/[^\p{L}\p{N}\s]/gu, ' ').split(/\s+/).filter(Boolean);
  return words.slice(0, 2).map((w) => [...w][0].toUpperCase()).join('');
}

function pageHead(title, subtitle, action) {
  return h('div', { class: 'page-head' },
    h('div', {}, h('h1', {}, title), subtitle ? h('p', { class: 'muted' }, subtitle) : null),
    action || null);
}

function priceInput(value = '', currency = 'USD') {
  return h('div', { class: 'input-money' },
    h('span', {}, currencySymbol(currency)),
    h('input', {
      class: 'input', name: 'price', inputmode: 'decimal', autocomplete: 'off', placeholder: '0.00',
      value, 'aria-label': 'Price', 'data-testid': 'price-input',
    }));
}

function errorCard(err) {
  if (err.status === 404) {
    return emptyState('Not found', 'It may have been removed, or the link is wrong.',
      h('a', { class: 'btn', href: '#/' }, 'Browse tickets'));
  }
  return emptyState('Something went wrong', err.message, h('a', { class: 'btn ghost', href: '#/' }, 'Back to tickets'));
}

// ---- browse -------------------------------------------------------------------------

async function buy(app, ticket, button) {
  if (!app.requireUser()) return;
  await busy(button, async () => {
    try {
      const order = await Api.buy(ticket.id);
      toast(`Reserved “${ticket.title}” for you. Complete payment before the timer runs out.`, 'success');
      app.navigate(`#/orders/${order.id}`);
    } catch (err) {
      toast(err.message, 'error');
    }
  });
}

function ticketCard(app, t) {
  const mine = app.user && app.user.id === t.userId;
  const action = mine
    ? h('a', { class: 'btn ghost sm', href: `#/tickets/${t.id}` }, 'Manage')
    : h('button', { class: 'btn sm', type: 'button', 'data-testid': 'buy' }, 'Buy');
  if (!mine) action.addEventListener('click', () => buy(app, t, action));
  return h('article', { class: 'ticket', 'data-testid': 'ticket-card', 'data-ticket-id': t.id },
    tint(h('div', { class: 'ticket-band' },
      h('span', { class: 'glyph' }, 'Admit one'),
      mine ? badge('Your listing', 'on-band') : null,
      h('span', { class: 'monogram', 'aria-hidden': 'true' }, monogram(t.title))), t.title),
    h('div', { class: 'ticket-perf' }),
    h('div', { class: 'ticket-main' },
      h('a', { class: 'ticket-title', href: `#/tickets/${t.id}` }, t.title),
      h('span', { class: 'muted' }, `Listed ${ago(t.createdAt)}`)),
    h('div', { class: 'ticket-foot' },
      h('span', { class: 'price', 'data-testid': 'ticket-price' }, money(t.price, t.currency)),
      action));
}

async function browse({ app, params }) {
  let query = params.get('q') || '';
  const cards = new Map();
  const grid = h('div', { class: 'grid', 'data-testid': 'ticket-grid' },
    [1, 2, 3, 4].map(() => h('div', { class: 'skeleton' })));
  const empty = h('div', {});
  const count = h('span', { class: 'muted', 'data-testid': 'ticket-count' }, '');
  const search = h('input', {
    type: 'search', placeholder: 'Search events, artists, venues…', value: query,
    'aria-label': 'Search tickets', 'data-testid': 'search',
  });

  function show(tickets) {
    if (cards.size === 0) grid.replaceChildren();
    const keep = new Set(tickets.map((t) => t.id));
    for (const [id, el] of cards) {
      if (keep.has(id)) continue;
      cards.delete(id);
      el.classList.add('leaving');
      el.removeAttribute('data-testid');
      setTimeout(() => el.remove(), 300);
    }
    for (const t of [...tickets].reverse()) { // newest first
      const el = ticketCard(app, t);
      const old = cards.get(t.id);
      if (old) old.remove();
      cards.set(t.id, el);
      grid.append(el);
    }
    count.textContent = !tickets.length ? '' : tickets.length === 1 ? '1 ticket for sale' : `${tickets.length} tickets for sale`;
    empty.replaceChildren(tickets.length ? '' : emptyState(
      query ? `Nothing matches “${query}”` : 'No tickets for sale right now',
      query ? 'Try another search.' : 'Got a ticket you can’t use? List it in under a minute.',
      query ? null : h('a', { class: 'btn', href: '#/sell' }, 'Sell a ticket')));
  }

  async function load() {
    try {
      show(await Api.tickets(query));
    } catch (err) {
      toast(err.message, 'error');
    }
  }
  const reload = coalesce(load);
  const onSearch = coalesce(() => {
    query = search.value.trim();
    load();
  }, 200);
  search.addEventListener('input', onSearch);

  await load();
  const el = h('section', {},
    h('div', { class: 'hero' },
      h('h1', {}, 'Resale tickets, fair and square'),
      h('p', {}, 'Buy from fans who can’t make it. Your ticket is held for you while you pay, so nobody can snatch it at checkout.'),
      h('div', { class: 'search' },
        icon('<circle cx="11" cy="11" r="7"/><path d="m20 20-3.5-3.5"/>'),
        search)),
    h('div', { class: 'page-head' }, h('h2', {}, 'On sale now'), count),
    grid, empty);
  return {
    el,
    onEvent: (ev) => { if (ev.subject.startsWith('ticket:')) reload(); },
    dispose: () => { reload.cancel(); onSearch.cancel(); },
  };
}

// ---- one ticket ---------------------------------------------------------------------

function editForm(app, t, onSaved) {
  const title = h('input', { class: 'input', name: 'title', value: t.title, 'data-testid': 'title-input', maxlength: '200' });
  const save = h('button', { class: 'btn', type: 'submit', 'data-testid': 'save' }, 'Save changes');
  const form = h('form', { class: 'form', novalidate: true },
    h('div', { class: 'field' }, h('label', {}, 'Title'), title),
    h('div', { class: 'field' }, h('label', {}, 'Price'), priceInput(String(t.price), t.currency),
      h('span', { class: 'hint' }, 'You can change the price while nobody is buying it.')),
    h('div', { class: 'row' }, save));
  if (t.locked) {
    for (const input of form.querySelectorAll('input, button')) input.disabled = true;
  }
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    await busy(save, async () => {
      try {
        const updated = await Api.updateTicket(t.id, {
          title: title.value, price: form.price.value.trim(), version: t.version,
        });
        showFieldErrors(form, { errors: [] });
        toast('Listing updated', 'success');
        onSaved(updated);
      } catch (err) {
        const rest = showFieldErrors(form, err);
        if (rest.length) toast(rest.join('. '), 'error');
      }
    });
  });
  return form;
}

async function ticket({ app, args }) {
  const [id] = args;
  const el = h('section', {});

  async function load() {
    let t;
    try {
      t = await Api.ticket(id);
    } catch (err) {
      el.replaceChildren(errorCard(err));
      return;
    }
    const mine = app.user && app.user.id === t.userId;
    let status;
    if (t.locked) status = badge('Reserved', 'warning', { 'data-testid': 'ticket-status' });
    else if (!t.listed) status = badge('Not for sale', '', { 'data-testid': 'ticket-status' });
    else status = badge('For sale', 'success', { 'data-testid': 'ticket-status' });

    let side;
    if (mine) {
      side = h('div', { class: 'card' },
        h('div', { class: 'card-head' }, h('h3', {}, 'Edit your listing'), status),
        h('div', { class: 'card-body stack' },
          t.locked ? h('p', { class: 'note' }, 'A buyer is paying for this ticket right now, so it can’t be edited. If they don’t finish, it goes back on sale automatically.') : null,
          editForm(app, t, () => load())));
    } else {
      const buyBtn = h('button', { class: 'btn lg block', type: 'button', 'data-testid': 'buy' }, `Buy for ${money(t.price, t.currency)}`);
      buyBtn.addEventListener('click', () => buy(app, t, buyBtn));
      if (t.locked || !t.listed) buyBtn.disabled = true;
      side = h('div', { class: 'card' },
        h('div', { class: 'card-body stack' },
          h('div', { class: 'row' }, h('span', { class: 'price price-lg' }, money(t.price, t.currency)), h('span', { class: 'spacer' }), status),
          buyBtn,
          h('p', { class: 'note' }, t.locked
            ? 'Someone is checking out with this ticket. If they don’t pay in time it comes back on sale — this page updates by itself.'
            : 'Buying reserves the ticket for you while you pay. Nobody else can buy it in the meantime.')));
    }
    el.replaceChildren(
      h('div', { class: 'two-col' },
        h('div', { class: 'ticket' },
          tint(h('div', { class: 'ticket-band' }, h('span', { class: 'glyph' }, 'Admit one')), t.title),
          h('div', { class: 'ticket-perf' }),
          h('div', { class: 'ticket-main' },
            h('h1', { 'data-testid': 'ticket-title' }, t.title),
            h('span', { class: 'muted' }, `Listed ${ago(t.createdAt)} · ${mine ? 'your listing' : 'verified resale'}`),
            h('div', { class: 'facts' },
              fact('Price', `${money(t.price, t.currency)} · no fees`),
              fact('Checkout', 'Held for you while you pay'),
              fact('Delivery', 'Transferred to your account the moment payment clears'))),
          h('div', { class: 'ticket-foot' },
            h('span', { class: 'mono muted' }, `#${t.id.slice(-12)} · v${t.version}`))),
        side));
  }
  const reload = coalesce(load);
  await load();
  return {
    el,
    title: 'Ticket',
    onEvent: (ev) => { if (ev.id === id) reload(); },
    dispose: () => reload.cancel(),
  };
}

function fact(label, text) {
  return h('div', { class: 'fact' }, h('span', { class: 'muted' }, label), h('span', {}, text));
}

// ---- sell ---------------------------------------------------------------------------

async function sell({ app }) {
  if (!app.requireUser()) return null;
  const submit = h('button', { class: 'btn lg', type: 'submit', 'data-testid': 'sell-submit' }, 'List ticket');
  const form = h('form', { class: 'form', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'sell-title' }, 'What’s the ticket for?'),
      h('input', { class: 'input', id: 'sell-title', name: 'title', placeholder: 'e.g. Arctic Monkeys — Wembley, Sat 14 June', maxlength: '200', 'data-testid': 'title-input' })),
    h('div', { class: 'field' }, h('label', {}, 'Price'), priceInput(),
      h('span', { class: 'hint' }, 'Buyers pay exactly this amount — prices are kept in exact cents.')),
    h('div', { class: 'row' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    await busy(submit, async () => {
      try {
        const t = await Api.sell(form.title.value, form.price.value.trim());
        toast(`“${t.title}” is on sale for ${money(t.price, t.currency)}`, 'success');
        app.navigate('#/mine');
      } catch (err) {
        const rest = showFieldErrors(form, err);
        if (rest.length) toast(rest.join('. '), 'error');
      }
    });
  });
  const steps = [
    ['List it', 'Give it a title and a price. It shows up for everyone instantly.'],
    ['A buyer reserves it', 'While they pay, the ticket is held for them and its price is fixed.'],
    ['Get paid', 'Once payment clears, the ticket passes to the buyer.'],
  ];
  return {
    title: 'Sell a ticket',
    el: h('section', {},
      pageHead('Sell a ticket', 'Can’t make it? Pass your ticket on to a real fan.'),
      h('div', { class: 'two-col' },
        h('div', { class: 'card' }, h('div', { class: 'card-body' }, form)),
        h('div', { class: 'card' },
          h('div', { class: 'card-head' }, h('h3', {}, 'How selling works')),
          h('div', { class: 'list' }, steps.map(([title, text], i) =>
            h('div', { class: 'list-row' },
              h('span', { class: 'badge primary' }, String(i + 1)),
              h('div', { class: 'grow' }, h('div', { class: 'title' }, title), h('div', { class: 'meta' }, text)))))))),
  };
}

// ---- my tickets ---------------------------------------------------------------------

function myTicketRow(t, reload) {
  let status;
  if (t.locked) status = badge('Reserved by a buyer', 'warning');
  else if (t.listed) status = badge('For sale', 'success');
  else status = badge('Not listed', '');
  status.dataset.testid = 'my-ticket-status';

  const price = h('span', { class: 'price' }, money(t.price, t.currency));
  const actions = h('div', { class: 'row' });
  const row = h('div', { class: 'list-row', 'data-testid': 'my-ticket', 'data-ticket-id': t.id },
    tint(h('div', { class: 'thumb' }), t.title),
    h('div', { class: 'grow' },
      h('a', { class: 'title', href: `#/tickets/${t.id}` }, t.title),
      h('div', { class: 'meta' }, status, h('span', {}, t.listed ? `Listed ${ago(t.createdAt)}` : 'Yours to keep or resell'))),
    price, actions);

  const edit = h('button', { class: 'btn ghost sm', type: 'button', 'data-testid': 'edit-price' }, 'Edit price');
  const toggle = h('button', { class: 'btn ghost sm', type: 'button', 'data-testid': t.listed ? 'unlist' : 'relist' },
    t.listed ? 'Unlist' : 'List for sale');
  if (t.locked) edit.disabled = toggle.disabled = true;
  toggle.addEventListener('click', () => busy(toggle, async () => {
    try {
      await Api.updateTicket(t.id, { listed: !t.listed });
      toast(t.listed ? 'Taken off sale' : 'Back on sale', 'success');
      reload();
    } catch (err) {
      toast(err.message, 'error');
    }
  }));
  edit.addEventListener('click', () => {
    const box = priceInput(String(t.price), t.currency);
    const input = box.querySelector('input');
    const save = h('button', { class: 'btn sm', type: 'submit' }, 'Save');
    const cancel = h('button', { class: 'btn ghost sm', type: 'button' }, 'Cancel');
    const form = h('form', { class: 'inline-edit' }, box, save, cancel);
    cancel.addEventListener('click', () => reload());
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(save, async () => {
        try {
          await Api.updateTicket(t.id, { price: input.value.trim(), version: t.version });
          toast('Price updated', 'success');
          reload();
        } catch (err) {
          input.classList.add('invalid');
          toast(err.message, 'error');
        }
      });
    });
    price.replaceWith(form);
    actions.replaceChildren();
    input.focus();
    input.select();
  });
  actions.append(edit, toggle);
  return row;
}

async function mine({ app }) {
  if (!app.requireUser()) return null;
  const box = h('div', {});
  const el = h('section', {},
    pageHead('My tickets', 'Everything you own: what you’re selling and what you bought.',
      h('a', { class: 'btn', href: '#/sell' }, 'Sell a ticket')),
    box);

  async function load() {
    let tickets;
    try {
      tickets = await Api.myTickets();
    } catch (err) {
      toast(err.message, 'error');
      return;
    }
    if (!tickets.length) {
      box.replaceChildren(emptyState('You don’t have any tickets yet', 'Tickets you list or buy show up here.',
        h('a', { class: 'btn', href: '#/' }, 'Browse tickets')));
      return;
    }
    box.replaceChildren(h('div', { class: 'card list', 'data-testid': 'my-tickets' },
      [...tickets].reverse().map((t) => myTicketRow(t, reload))));
  }
  const reload = coalesce(load, 50);
  await load();
  return {
    el,
    title: 'My tickets',
    onEvent: (ev) => { if (ev.subject.startsWith('ticket:') && !el.querySelector('.inline-edit')) reload(); },
    dispose: () => reload.cancel(),
  };
}

// ---- orders -------------------------------------------------------------------------

function countdownText(order) {
  return `${formatDuration(order.expiresAtMs - serverNow())} left to pay`;
}

async function orders({ app }) {
  if (!app.requireUser()) return null;
  const list = h('div', { class: 'card list', 'data-testid': 'orders' });
  const el = h('section', {}, pageHead('My orders', 'Reservations and purchases, newest first.'), list);
  let mine = new Set();
  let timers = [];

  async function load() {
    let all;
    try {
      all = await Api.orders();
    } catch (err) {
      toast(err.message, 'error');
      return;
    }
    timers.forEach(clearInterval);
    timers = [];
    mine = new Set(all.map((o) => o.id));
    if (!all.length) {
      list.replaceChildren(h('div', { class: 'empty' }, h('h3', {}, 'No orders yet'),
        h('p', {}, 'When you buy a ticket it shows up here.'), h('a', { class: 'btn', href: '#/' }, 'Find tickets')));
      return;
    }
    list.replaceChildren(...[...all].reverse().map((o) => {
      const title = (o.ticket && o.ticket.title) || 'Ticket';
      const meta = h('div', { class: 'meta' }, orderBadge(o.status), h('span', {}, `Ordered ${ago(o.createdAt)}`));
      if (o.status === 'created') {
        const left = h('span', { class: 'badge' }, countdownText(o));
        meta.append(left);
        timers.push(setInterval(() => {
          left.textContent = countdownText(o);
          if (o.expiresAtMs <= serverNow()) reload();
        }, 1000));
      }
      const action = o.status === 'created'
        ? h('a', { class: 'btn sm', href: `#/orders/${o.id}`, 'data-testid': 'pay-now' }, 'Pay now')
        : h('a', { class: 'btn ghost sm', href: `#/orders/${o.id}` }, 'View');
      return h('div', { class: 'list-row', 'data-testid': 'order-row', 'data-order-id': o.id },
        tint(h('div', { class: 'thumb' }), title),
        h('div', { class: 'grow' }, h('div', { class: 'title' }, title), meta),
        h('span', { class: 'price' }, money(o.price, o.currency)),
        action);
    }));
  }
  const reload = coalesce(load);
  await load();
  return {
    el,
    title: 'My orders',
    onEvent: (ev) => { if (mine.has(ev.id)) reload(); },
    dispose: () => { reload.cancel(); timers.forEach(clearInterval); },
  };
}

// ---- checkout -----------------------------------------------------------------------

function stateBox(kind, icon, title, text, ...actions) {
  return h('div', { class: 'state', 'data-testid': 'checkout-state', 'data-state': kind },
    h('div', { class: `icon ${kind}` }, icon), h('h2', {}, title), h('p', { class: 'muted' }, text),
    actions.length ? h('div', { class: 'row' }, actions) : null);
}

async function checkout({ app, args }) {
  if (!app.requireUser()) return null;
  const [id] = args;
  const el = h('section', {});
  let timer = null;

  function payPanel(order) {
    const total = order.expiresAtMs - Date.parse(order.createdAt);
    const time = h('span', { class: 'countdown-time', 'data-testid': 'countdown' }, formatDuration(order.expiresAtMs - serverNow()));
    const fill = h('div', {});
    const box = h('div', { class: 'countdown' },
      h('div', { class: 'countdown-top' }, h('span', {}, 'Reserved for you'), time), h('div', { class: 'bar' }, fill),
      h('span', { class: 'note' }, 'Nobody else can buy this ticket until the timer runs out.'));
    const tick = () => {
      const left = order.expiresAtMs - serverNow();
      time.textContent = formatDuration(left);
      fill.style.width = `${Math.max(0, Math.min(100, (left / total) * 100))}%`;
      box.classList.toggle('urgent', left < 60000);
      if (left <= 0) {
        clearInterval(timer);
        timer = null;
        setTimeout(load, 400); // the server's timer expires it; show that
      }
    };
    tick();
    timer = setInterval(tick, 250);

    const card = h('select', { class: 'input', name: 'token', 'data-testid': 'token' },
      TEST_CARDS.map(([value, label]) => h('option', { value }, label)));
    const pay = h('button', { class: 'btn lg block', type: 'submit', 'data-testid': 'pay' }, `Pay ${money(order.price, order.currency)}`);
    const cancel = h('button', { class: 'btn danger-ghost block', type: 'button', 'data-testid': 'cancel-order' }, 'Cancel reservation');
    const form = h('form', { class: 'form' },
      h('div', { class: 'field' }, h('label', {}, 'Card'), card,
        h('span', { class: 'hint' }, 'Test mode: pick how the payment should go.')),
      pay, cancel);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(pay, async () => {
        try {
          const res = await Api.pay(order.id, card.value);
          if (res.status === 'pending') toast('Payment sent — waiting for the bank to answer…');
          else toast('Payment received. Enjoy the show!', 'success');
        } catch (err) {
          toast(err.status === 402 ? `Payment declined: ${err.message}` : err.message, 'error');
        }
        await load();
      });
    });
    cancel.addEventListener('click', () => busy(cancel, async () => {
      try {
        await Api.cancel(order.id);
        toast('Reservation cancelled. The ticket is back on sale.');
      } catch (err) {
        toast(err.message, 'error');
      }
      await load();
    }));
    return h('div', { class: 'card' },
      h('div', { class: 'card-head' }, h('h3', {}, 'Payment'), orderBadge(order.status)),
      h('div', { class: 'card-body stack' }, box, form));
  }

  function outcome(order) {
    const browseBtn = h('a', { class: 'btn', href: '#/' }, 'Browse tickets');
    const failed = order.payment && order.payment.message ? ` ${order.payment.message.replace(/\.$/, '')}.` : '';
    let box;
    switch (order.status) {
      case 'complete':
        box = stateBox('success', '✓', 'You’re going!', 'Payment received. The ticket is now yours.',
          h('a', { class: 'btn', href: '#/mine', 'data-testid': 'to-my-tickets' }, 'See my tickets'));
        break;
      case 'awaiting:payment':
        box = stateBox('warning', '…', 'Processing your payment', 'The bank hasn’t answered yet. This page updates by itself.');
        break;
      case 'cancelled':
        box = stateBox('danger', '×', 'Order cancelled', `No money was taken.${failed} The ticket went back on sale.`, browseBtn);
        break;
      case 'expired':
        box = stateBox('neutral', '⏱', 'Reservation expired', 'Time ran out before payment, so the ticket went back on sale.', browseBtn);
        break;
      default:
        box = stateBox('neutral', 'i', order.status, '', browseBtn);
    }
    return h('div', { class: 'card' },
      h('div', { class: 'card-head' }, h('h3', {}, 'Payment'), orderBadge(order.status)), box);
  }

  async function load() {
    clearInterval(timer);
    timer = null;
    let order;
    try {
      order = await Api.order(id);
    } catch (err) {
      el.replaceChildren(errorCard(err));
      return;
    }
    const title = (order.ticket && order.ticket.title) || 'Ticket';
    const summary = h('div', { class: 'card' },
      tint(h('div', { class: 'ticket-band' }, h('span', { class: 'glyph' }, 'Your order')), title),
      h('div', { class: 'card-body stack' },
        h('h2', { 'data-testid': 'checkout-title' }, title),
        h('div', {},
          h('div', { class: 'summary-line' }, h('span', { class: 'muted' }, 'Ticket'), h('span', {}, money(order.price, order.currency))),
          h('div', { class: 'summary-line' }, h('span', { class: 'muted' }, 'Fees'), h('span', {}, money(0, order.currency))),
          h('div', { class: 'summary-line total' }, h('span', {}, 'Total'), h('span', { 'data-testid': 'checkout-total' }, money(order.price, order.currency)))),
        h('p', { class: 'mono muted' }, `Order #${order.id.slice(-12)}`)));
    el.replaceChildren(
      pageHead('Checkout', null, h('a', { class: 'btn ghost sm', href: '#/orders' }, 'All orders')),
      h('div', { class: 'two-col' }, summary, order.status === 'created' ? payPanel(order) : outcome(order)));
  }
  const reload = coalesce(load);
  await load();
  return {
    el,
    title: 'Checkout',
    onEvent: (ev) => { if (ev.id === id && !el.querySelector('.btn.busy')) reload(); },
    dispose: () => { clearInterval(timer); reload.cancel(); },
  };
}

// ---- sign in / sign up --------------------------------------------------------------

function authView(kind) {
  return async ({ app, params }) => {
    const next = params.get('next') || '/';
    const signup = kind === 'signup';
    const submit = h('button', { class: 'btn lg block', type: 'submit', 'data-testid': 'auth-submit' }, signup ? 'Create account' : 'Sign in');
    const form = h('form', { class: 'form', novalidate: true },
      h('div', { class: 'field' }, h('label', { for: 'auth-email' }, 'Email'),
        h('input', { class: 'input', id: 'auth-email', name: 'email', type: 'email', autocomplete: 'email', required: true, 'data-testid': 'email' })),
      h('div', { class: 'field' }, h('label', { for: 'auth-password' }, 'Password'),
        h('input', { class: 'input', id: 'auth-password', name: 'password', type: 'password', autocomplete: signup ? 'new-password' : 'current-password', required: true, 'data-testid': 'password' }),
        signup ? h('span', { class: 'hint' }, 'At least 8 characters.') : null),
      submit);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      busy(submit, async () => {
        try {
          const user = await (signup ? Api.signUp : Api.signIn)(form.email.value, form.password.value);
          app.setUser(user);
          toast(signup ? `Welcome to Ticketyboo, ${user.email}!` : `Welcome back, ${user.email}`, 'success');
          app.navigate(`#${next.startsWith('/') ? next : '/'}`);
        } catch (err) {
          const rest = showFieldErrors(form, err);
          if (rest.length) toast(rest.join('. '), 'error');
        }
      });
    });
    const other = signup
      ? h('p', { class: 'muted' }, 'Already have an account? ', h('a', { href: `#/signin?next=${encodeURIComponent(next)}` }, 'Sign in'))
      : h('p', { class: 'muted' }, 'New here? ', h('a', { href: `#/signup?next=${encodeURIComponent(next)}` }, 'Create an account'));
    return {
      title: signup ? 'Sign up' : 'Sign in',
      el: h('section', { class: 'auth-wrap' },
        h('div', { class: 'card auth-card' }, h('div', { class: 'card-body' },
          h('h1', {}, signup ? 'Create your account' : 'Welcome back'),
          h('p', { class: 'sub' }, signup ? 'Buy and sell tickets in minutes.' : 'Sign in to buy, sell and track your orders.'),
          form, h('div', { class: 'row' }, other)))),
    };
  };
}

async function notFound() {
  return {
    title: 'Not found',
    el: emptyState('Page not found', 'There’s nothing at this address.', h('a', { class: 'btn', href: '#/' }, 'Browse tickets')),
  };
}

export const views = {
  browse, ticket, sell, mine, orders, checkout, signin: authView('signin'), signup: authView('signup'), notFound,
};
