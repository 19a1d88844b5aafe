'use strict';
// Shared by build.js (npm install) and prepack.js (npm pack): where things
// are, and how to get the pinned SWIG.

const cp = require('child_process');
const fs = require('fs');
const path = require('path');

const PKG = path.resolve(__dirname, '..');
const NATIVE = path.join(PKG, 'build-native'); // node-gyp owns build/ and wipes it
const WRAPPER = path.join(PKG, 'src', 'ticketyboo_wrap.cxx');
const REPO = path.resolve(PKG, '..', '..');
const IN_REPO = fs.existsSync(path.join(PKG, '..', 'ticketyboo.i')) &&
  fs.existsSync(path.join(REPO, 'include', 'ticketyboo', 'ticketyboo.h')) &&
  fs.existsSync(path.join(REPO, 'CMakeLists.txt'));

function log(msg) {
  console.log(`ticketyboo: ${msg}`);
}

function run(cmd, args, opts = {}) {
  log([cmd, ...args].join(' '));
  const r = cp.spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} exited with status ${r.status}`);
}

function capture(cmd, args) {
  const r = cp.spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : null;
}

/** The interface file and the pinned SWIG version next to it. */
function interfaceFile() {
  for (const dir of [PKG, path.join(PKG, '..')]) {
    const file = path.join(dir, 'ticketyboo.i');
    if (fs.existsSync(file)) {
      const pinFile = path.join(dir, 'SWIG_VERSION');
      const pin = fs.existsSync(pinFile) ? fs.readFileSync(pinFile, 'utf8').trim() : null;
      return { file, pin };
    }
  }
  return null;
}

/** libticketyboo's sources: $TICKETYBOO_SOURCE_DIR, the repository, or vendor/. */
function librarySource() {
  const candidates = [];
  if (process.env.TICKETYBOO_SOURCE_DIR) candidates.push(path.resolve(process.env.TICKETYBOO_SOURCE_DIR));
  if (IN_REPO) candidates.push(REPO);
  candidates.push(path.join(PKG, 'vendor', 'libticketyboo'));
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, 'include', 'ticketyboo', 'ticketyboo.h')) &&
        fs.existsSync(path.join(dir, 'CMakeLists.txt'))) {
      return dir;
    }
  }
  throw new Error('libticketyboo sources not found (the repository around bindings/node, vendor/, ' +
    'or $TICKETYBOO_SOURCE_DIR)');
}

function swigVersion(swig) {
  const out = capture(swig, ['-version']);
  const m = out && /SWIG Version ([0-9.]+)/.exec(out);
  return m ? m[1] : null;
}

/**
 * A SWIG of the pinned version: $SWIG, swig on PATH, or one installed from
 * PyPI (`pip install swig==<pin>`) into build-native/swig-venv.
 */
function findSwig(pin) {
  if (process.env.SWIG) {
    const v = swigVersion(process.env.SWIG);
    if (!v) throw new Error(`$SWIG (${process.env.SWIG}) does not run`);
    if (v !== pin) log(`warning: $SWIG is SWIG ${v}, not the pinned ${pin}`);
    return process.env.SWIG;
  }
  const venv = path.join(NATIVE, 'swig-venv');
  for (const candidate of ['swig', path.join(venv, 'bin', 'swig')]) {
    if (swigVersion(candidate) === pin) return candidate;
  }
  log(`SWIG ${pin} not found; installing it from PyPI into ${venv}`);
  fs.mkdirSync(NATIVE, { recursive: true });
  run('python3', ['-m', 'venv', venv]);
  run(path.join(venv, 'bin', 'python'), ['-m', 'pip', 'install', '--disable-pip-version-check', '-q',
    `swig==${pin}`]);
  return path.join(venv, 'bin', 'swig');
}

function newestMtime(files) {
  return Math.max(...files.map((f) => fs.statSync(f).mtimeMs));
}

/** Generate src/ticketyboo_wrap.cxx unless it is there and up to date. */
function ensureWrapper(includeDir, { force = false } = {}) {
  const iface = interfaceFile();
  if (!iface) {
    if (fs.existsSync(WRAPPER)) return; // a packed tarball: the wrapper ships
    throw new Error('neither src/ticketyboo_wrap.cxx nor ticketyboo.i is present');
  }
  const headerDir = path.join(includeDir, 'ticketyboo');
  const inputs = [iface.file, ...fs.readdirSync(headerDir).map((h) => path.join(headerDir, h))];
  if (!force && fs.existsSync(WRAPPER) && fs.statSync(WRAPPER).mtimeMs >= newestMtime(inputs)) return;
  if (!IN_REPO && fs.existsSync(WRAPPER)) return; // shipped with the package: trust it
  const swig = findSwig(iface.pin);
  fs.mkdirSync(path.dirname(WRAPPER), { recursive: true });
  run(swig, ['-javascript', '-napi', `-I${includeDir}`, '-o', WRAPPER, iface.file]);
}

module.exports = {
  PKG, NATIVE, WRAPPER, REPO, IN_REPO, log, run, capture, interfaceFile, librarySource, findSwig,
  ensureWrapper,
};
