// DOM helpers: elements are built with h(), never from HTML strings, so
// titles and emails can never inject markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// An inline SVG icon from constant markup (never from data).
export function icon(markup) {
  const doc = new DOMParser().parseFromString(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" aria-hidden="true">${markup}</svg>`,
    'image/svg+xml');
  return document.importNode(doc.documentElement, true);
}

export function money(amount, currency = 'USD') {
  try {
    return new Intl.NumberFormat('en-US', { style: 'currency', currency }).format(amount);
  } catch {
    return `${amount} ${currency}`;
  }
}

export function currencySymbol(currency = 'USD') {
  try {
    const part = new Intl.NumberFormat('en-US', { style: 'currency', currency })
      .formatToParts(0).find((p) => p.type === 'currency');
    return part ? part.value : currency;
  } catch {
    return currency;
  }
}

// A stable hue per title, for the card's colour band.
export function hueFor(text) {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

export function tint(el, text) {
  el.style.setProperty('--hue', String(hueFor(text)));
  return el;
}

export function badge(text, kind = '', extra = {}) {
  return h('span', { class: `badge ${kind}`, ...extra }, text);
}

const ORDER_BADGES = {
  created: ['Reserved', 'primary'],
  'awaiting:payment': ['Processing payment', 'warning'],
  complete: ['Paid', 'success'],
  cancelled: ['Cancelled', 'danger'],
  expired: ['Expired', ''],
  refunded: ['Refunded', ''],
};

export function orderBadge(status) {
  const [text, kind] = ORDER_BADGES[status] || [status, ''];
  return badge(text, kind, { 'data-testid': 'order-status', 'data-status': status });
}

export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const icon = { error: '!', success: '✓', info: 'i' }[kind] || 'i';
  const el = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('span', { class: 'toast-icon' }, icon), h('span', {}, message));
  box.append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 6000 : 3500);
}

export function formatDuration(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}

// Mark a button busy while `work` runs.
export async function busy(button, work) {
  button.disabled = true;
  button.classList.add('busy');
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.classList.remove('busy');
  }
}

// Show field errors from an ApiError under the matching inputs of `form`;
// returns the messages that had no field to go to.
export function showFieldErrors(form, err) {
  for (const el of form.querySelectorAll('.error')) el.remove();
  for (const el of form.querySelectorAll('.invalid')) el.classList.remove('invalid');
  const rest = [];
  for (const e of err.errors || []) {
    const input = e.field && form.querySelector(`[name="${CSS.escape(e.field)}"]`);
    if (!input) {
      rest.push(e.message);
      continue;
    }
    input.classList.add('invalid');
    const field = input.closest('.field');
    if (field && !field.querySelector('.error')) field.append(h('div', { class: 'error' }, e.message));
  }
  return rest;
}

export function emptyState(title, text, action) {
  return h('div', { class: 'card empty' }, h('h3', {}, title), h('p', {}, text), action || null);
}
