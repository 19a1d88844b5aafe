'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { tb } = require('./helpers');

const MODULE = process.env.TICKETYBOO_MODULE || path.join(__dirname, '..');

test('a file market persists, and a subscriber resumes after reopening', (t) => {
  const dir = require('node:fs').mkdtempSync(path.join(require('node:os').tmpdir(), 'tb-'));
  t.after(() => require('node:fs').rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'market.db');
  let market = new tb.Market({ path: file, passwordCost: 'min' });
  market.signup('a@example.com', 'password one');
  let seen = [];
  market.subscribe('feed', (e) => seen.push(e.seq));
  market.dispatch();
  market.close();
  assert.deepEqual(seen, [1]);
  market = new tb.Market({ path: file, passwordCost: 'min' });
  market.signup('b@example.com', 'password two');
  seen = [];
  market.subscribe('feed', (e) => seen.push(e.seq));
  market.dispatch();
  market.close();
  assert.deepEqual(seen, [2]);
});

test('the low-level close lets go of the pointer', () => {
  const { core } = tb;
  const raw = core.market_open(':memory:', 0, null, null, 1, 0, 0, 0, 0, null, 0);
  core.market_close(raw);
  core.market_close(raw); // a no-op, not a double free
  assert.throws(() => core.market_tick(raw), tb.InvalidArgumentError);
});

test('exiting with open markets, subscribers, async work and garbage is clean', () => {
  const script = `
    const tb = require(${JSON.stringify(MODULE)});
    const clock = new tb.ManualClock();
    for (let i = 0; i < 3; i++) {
      const m = new tb.Market({ clock, payments: new tb.FakePayments(), passwordCost: 'min' });
      const { user } = m.signup('a@example.com', 'password one');
      m.subscribe('s', () => {});
      m.tick();
      m.signupAsync('b' + i + '@example.com', 'password two');  // still running at exit
      for (let j = 0; j < 100; j++) m.createTicket(user, 'Seat ' + j, 100);
      [...m.tickets()];
    }
    if (global.gc) global.gc();
  `;
  for (let i = 0; i < 10; i++) {
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.signal, null, r.stderr);
  }
});

test('markets dropped without close() are closed by the finalizer', async () => {
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', `
    const tb = require(${JSON.stringify(MODULE)});
    (async () => {
      for (let i = 0; i < 20; i++) {
        const m = new tb.Market({ clock: new tb.ManualClock(), payments: new tb.FakePayments() });
        m.subscribe('s', () => {});
      }
      for (let i = 0; i < 5; i++) { global.gc(); await new Promise((r) => setTimeout(r, 10)); }
    })();
  `], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);
});
