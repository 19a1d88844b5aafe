#!/usr/bin/env node
'use strict';
// `npm install` builds the addon here, offline apart from the npm registry:
//  1. libticketyboo, as a shared library, with the project's own CMake build
//     (from the repository, or from vendor/ in a packed tarball);
//  2. the SWIG wrapper, unless the package carries it (a packed tarball does);
//  3. the addon, with node-gyp against this Node's own headers
//     (--nodedir = the prefix of process.execPath), so nothing is downloaded.
// The library is copied next to the addon (build/Release), which finds it
// through its $ORIGIN rpath.
//
// Environment: TICKETYBOO_SOURCE_DIR (library sources), SWIG (a swig binary),
// TB_BINDINGS_WERROR=1 (-Werror on the wrapper), CMAKE_BUILD_PARALLEL_LEVEL.

const fs = require('fs');
const os = require('os');
const path = require('path');
const { PKG, NATIVE, log, run, capture, librarySource, ensureWrapper } = require('./common');

function nodeDir() {
  const prefix = path.dirname(path.dirname(process.execPath));
  const header = path.join(prefix, 'include', 'node', 'node_api.h');
  if (!fs.existsSync(header)) {
    throw new Error(`Node's headers are not installed (${header} is missing); install the package ` +
      'that provides them (Debian: libnode-dev / nodejs from NodeSource includes them)');
  }
  return prefix;
}

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp',
      'bin', 'node-gyp.js'),
  ];
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js', { paths: [PKG] }));
  } catch (e) {
    // not installed locally: npm's bundled copy will do
  }
  const found = candidates.find((c) => c && fs.existsSync(c));
  if (!found) throw new Error('node-gyp not found (it ships with npm)');
  return found;
}

function addonApiDir() {
  const resolve = () => path.dirname(require.resolve('node-addon-api/package.json', { paths: [PKG] }));
  try {
    return resolve();
  } catch (e) {
    // npm skips the dependencies of a linked folder outside the project: fetch it here.
    run(process.platform === 'win32' ? 'npm.cmd' : 'npm',
      ['install', '--no-save', '--no-package-lock', '--ignore-scripts', 'node-addon-api@^8.0.0'], { cwd: PKG });
    return resolve();
  }
}

function buildLibrary(source) {
  const dir = path.join(NATIVE, 'libticketyboo');
  const cache = path.join(dir, 'CMakeCache.txt');
  const ninja = capture('ninja', ['--version']) !== null;
  const generator = ninja ? 'Ninja' : 'Unix Makefiles';
  if (fs.existsSync(cache)) {
    const text = fs.readFileSync(cache, 'utf8');
    if (!text.includes(`CMAKE_GENERATOR:INTERNAL=${generator}\n`) ||
        !text.includes(`CMAKE_HOME_DIRECTORY:INTERNAL=${source}\n`)) {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const off = ['TB_BUILD_TESTS', 'TB_BUILD_EXAMPLES', 'TB_BUILD_SERVER', 'TB_BUILD_BENCH', 'TB_BUILD_BINDINGS',
    'TB_WERROR', 'TB_SANITIZE'].map((o) => `-D${o}=OFF`);
  run('cmake', ['-S', source, '-B', dir, '-G', generator, '-DCMAKE_BUILD_TYPE=Release', ...off]);
  const jobs = process.env.CMAKE_BUILD_PARALLEL_LEVEL || String(Math.max(1, Math.min(os.cpus().length, 4)));
  run('cmake', ['--build', dir, '--target', 'ticketyboo', '--parallel', jobs]);
  // The SONAME link (libticketyboo.so.0.1) is what the addon will ask for.
  const soname = fs.readdirSync(dir).find((f) => /^libticketyboo\.so\.\d+\.\d+$/.test(f));
  if (!soname) throw new Error(`no libticketyboo.so.<major>.<minor> in ${dir}`);
  return { dir, soname, include: path.join(source, 'include') };
}

function main() {
  const source = librarySource();
  log(`libticketyboo sources: ${source}`);
  const lib = buildLibrary(source);
  ensureWrapper(lib.include);
  const config = {
    include: lib.include,
    libdir: lib.dir,
    addonApi: addonApiDir(),
    werror: process.env.TB_BINDINGS_WERROR === '1',
  };
  fs.writeFileSync(path.join(NATIVE, 'config.json'), JSON.stringify(config, null, 2));

  const gyp = nodeGyp();
  const nodedir = `--nodedir=${nodeDir()}`;
  run(process.execPath, [gyp, 'configure', nodedir], { cwd: PKG });
  run(process.execPath, [gyp, 'build', nodedir, '--jobs', 'max'], { cwd: PKG });

  const release = path.join(PKG, 'build', 'Release');
  fs.copyFileSync(path.join(lib.dir, lib.soname), path.join(release, lib.soname));
  run(process.execPath, ['-e', `require(${JSON.stringify(path.join(release, 'ticketyboo.node'))})`]);
  log(`built ${path.join(release, 'ticketyboo.node')}`);
}

try {
  main();
} catch (err) {
  console.error(`ticketyboo: build failed: ${err.message}`);
  process.exit(1);
}
