// The REST API, as the browser sees it.  Errors come back as ApiError with the
// server's {"errors":[{message, field?}]} list.

export class ApiError extends Error {
  constructor(status, errors) {
    super(errors.map((e) => e.message).join('. ') || `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
  }

  // {field: message} for validation errors.
  get fields() {
    const out = {};
    for (const e of this.errors) if (e.field && !out[e.field]) out[e.field] = e.message;
    return out;
  }
}

let skewMs = 0;

// The server's clock, estimated from the Date header (second resolution, so
// only a skew larger than two seconds is corrected).
export function serverNow() {
  return Date.now() + skewMs;
}

function noteDate(res) {
  const date = Date.parse(res.headers.get('Date') || '');
  if (Number.isFinite(date)) {
    const skew = date - Date.now();
    skewMs = Math.abs(skew) > 2000 ? skew : 0;
  }
}

export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, [{ message: 'Cannot reach the server. Check your connection.' }]);
  }
  noteDate(res);
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, (data && data.errors) || [{ message: res.statusText }]);
  return data;
}

export const Api = {
  currentUser: () => api('GET', '/api/users/currentuser').then((d) => d.currentUser),
  signUp: (email, password) => api('POST', '/api/users/signup', { email, password }),
  signIn: (email, password) => api('POST', '/api/users/signin', { email, password }),
  signOut: () => api('POST', '/api/users/signout', {}),
  tickets: (q) => api('GET', `/api/tickets${q ? `?q=${encodeURIComponent(q)}` : ''}`),
  myTickets: () => api('GET', '/api/tickets?mine=1'),
  ticket: (id) => api('GET', `/api/tickets/${encodeURIComponent(id)}`),
  sell: (title, price) => api('POST', '/api/tickets', { title, price }),
  updateTicket: (id, changes) => api('PUT', `/api/tickets/${encodeURIComponent(id)}`, changes),
  orders: () => api('GET', '/api/orders'),
  order: (id) => api('GET', `/api/orders/${encodeURIComponent(id)}`),
  buy: (ticketId) => api('POST', '/api/orders', { ticketId }),
  cancel: (id) => api('DELETE', `/api/orders/${encodeURIComponent(id)}`),
  pay: (orderId, token) => api('POST', '/api/payments', { orderId, token }),
};
