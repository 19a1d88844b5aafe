'use strict';
// Errors: one Error subclass per libticketyboo status, all under
// TicketybooError, each with `code` ('ELOCKED'), `status` (-6) and `field`
// (the offending input of a validation failure, else null).

class TicketybooError extends Error {
  constructor(message, { code = 'EINTERNAL', status = -17, field = null } = {}) {
    super(message);
    this.code = code;
    this.status = status;
    this.field = field;
  }

  get name() {
    return this.constructor.name;
  }
}

const STATUSES = {
  EINVAL: [-1, 'InvalidArgumentError'],
  ENOTFOUND: [-2, 'NotFoundError'],
  EEXISTS: [-3, 'AlreadyExistsError'],
  EUNAUTH: [-4, 'UnauthenticatedError'],
  EFORBIDDEN: [-5, 'ForbiddenError'],
  ELOCKED: [-6, 'TicketLockedError'],
  ECONFLICT: [-7, 'ConflictError'],
  EEXPIRED: [-8, 'ExpiredError'],
  ESTATE: [-9, 'WrongStateError'],
  EDECLINED: [-10, 'PaymentDeclinedError'],
  EPROVIDER: [-11, 'ProviderUnavailableError'],
  ESTORAGE: [-12, 'StorageError'],
  ENOMEM: [-13, 'OutOfMemoryError'],
  EBUSY: [-14, 'BusyError'],
  EVERSION: [-15, 'VersionMismatchError'],
  ESIGNATURE: [-16, 'InvalidSignatureError'],
  EINTERNAL: [-17, 'InternalError'],
};

const classes = { TicketybooError };
const byCode = {};
for (const [code, [status, name]] of Object.entries(STATUSES)) {
  // A named class per status, e.g. `class TicketLockedError extends TicketybooError`.
  const cls = {
    [name]: class extends TicketybooError {
      constructor(message, detail = {}) {
        super(message, { code, status, field: null, ...detail });
      }
    },
  }[name];
  classes[name] = cls;
  byCode[code] = cls;
}

/** The class for a status code ('ELOCKED'); TicketybooError for an unknown one. */
function errorClass(code) {
  return byCode[code] || TicketybooError;
}

/**
 * Turn the plain Error the native module throws (with code, status, field)
 * into its class, keeping message and stack.  Anything else passes through.
 */
function translate(err) {
  if (err instanceof Error && !(err instanceof TicketybooError) &&
      typeof err.code === 'string' && typeof err.status === 'number' && 'field' in err) {
    const cls = errorClass(err.code);
    Object.setPrototypeOf(err, cls.prototype);
    if (typeof err.stack === 'string' && err.stack.startsWith('Error: ')) {
      err.stack = `${cls.name}: ${err.stack.slice('Error: '.length)}`;
    }
  }
  return err;
}

function invalid(message, field) {
  return new classes.InvalidArgumentError(message, { field });
}

module.exports = { ...classes, STATUSES, errorClass, translate, invalid };
