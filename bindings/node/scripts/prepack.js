#!/usr/bin/env node
'use strict';
// `npm pack` / `npm publish`: make the tarball self-contained, so installing
// it needs neither SWIG nor the repository:
//   src/ticketyboo_wrap.cxx   generated here with the pinned SWIG
//   ticketyboo.i, SWIG_VERSION copied from ../
//   vendor/libticketyboo/      the library's sources and CMake build
// `--clean` (postpack) removes the copies again; the wrapper stays (gitignored).

const fs = require('fs');
const path = require('path');
const { PKG, REPO, IN_REPO, log, ensureWrapper } = require('./common');

const COPIES = ['ticketyboo.i', 'SWIG_VERSION'];
const VENDOR = path.join(PKG, 'vendor');
const LIBRARY_PARTS = ['CMakeLists.txt', 'cmake', 'include', 'src', 'pkgconfig', 'LICENSE', 'COPYING'];

function clean() {
  for (const name of COPIES) fs.rmSync(path.join(PKG, name), { force: true });
  fs.rmSync(VENDOR, { recursive: true, force: true });
}

if (!IN_REPO) {
  log('not inside the repository: packing as is');
  process.exit(0);
}
clean();
if (process.argv.includes('--clean')) process.exit(0);

ensureWrapper(path.join(REPO, 'include'), { force: true });
for (const name of COPIES) fs.copyFileSync(path.join(PKG, '..', name), path.join(PKG, name));
const lib = path.join(VENDOR, 'libticketyboo');
fs.mkdirSync(lib, { recursive: true });
for (const part of LIBRARY_PARTS) {
  const src = path.join(REPO, part);
  if (fs.existsSync(src)) fs.cpSync(src, path.join(lib, part), { recursive: true });
}
log(`packed the wrapper, the interface and the library sources (${lib})`);
