'use strict';
// The generated module (SWIG -javascript -napi), with every function's
// native error turned into its TicketybooError subclass.

const path = require('path');
const { translate } = require('./errors');

const addon = require(path.join(__dirname, '..', 'build', 'Release', 'ticketyboo.node'));

const core = {};
// SWIG defines functions and constants as non-enumerable properties.
for (const name of Object.getOwnPropertyNames(addon)) {
  const value = addon[name];
  // SWIG classes (record proxies) are constructors with methods on their
  // prototype; module functions are wrapped.
  const isClass = typeof value === 'function' && value.prototype &&
    Object.getOwnPropertyNames(value.prototype).length > 1;
  if (typeof value === 'function' && !isClass) {
    core[name] = function (...args) {
      try {
        return value(...args);
      } catch (err) {
        throw translate(err);
      }
    };
  } else {
    core[name] = value;
  }
}

module.exports = core;
