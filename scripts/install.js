'use strict';
// `npm install`'s native step. A user's install keeps the prebuilt addon when its platform package loads; anything
// else (a clone, a platform without a prebuilt package, a prebuilt that does not load) builds from source.
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { prebuiltPackage, localBuild, platformTag } = require('../lib/addon.js');

const root = path.join(__dirname, '..');

/** Why the prebuilt addon cannot be used, or null when it loads. */
function whyNotPrebuilt() {
  // A local build wins in native.js's order, so one that exists is rebuilt from the current sources.
  if (fs.existsSync(localBuild)) return `a local build (${path.basename(localBuild)}) exists and is rebuilt from the sources`;
  try {
    require(prebuiltPackage);
    return null;
  } catch (err) {
    return err.code === 'MODULE_NOT_FOUND' && String(err.message).includes(`'${prebuiltPackage}'`)
      ? `the prebuilt package ${prebuiltPackage} is not installed`
      : `the prebuilt package ${prebuiltPackage} did not load (${err.message.split('\n')[0]})`;
  }
}

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (result.error) throw result.error;
  if (result.status !== 0) process.exit(result.status || 1);
}

/** `napi build` where @napi-rs/cli is installed (a clone): it also writes the loader and its types. */
function napiCli() {
  try {
    const manifest = require.resolve('@napi-rs/cli/package.json', { paths: [root] });
    const { bin } = require(manifest);
    return path.join(path.dirname(manifest), typeof bin === 'string' ? bin : bin.napi);
  } catch {
    return null;
  }
}

/** A plain cargo build, for an installed package (its loader is shipped): copy the library to where native.js looks. */
function cargoBuild() {
  run('cargo', ['build', '--release', '--lib']);
  const library = { darwin: 'libferrows.dylib', win32: 'ferrows.dll' }[process.platform] || 'libferrows.so';
  const targetDir = process.env.CARGO_TARGET_DIR || path.join(root, 'target');
  fs.copyFileSync(path.join(targetDir, 'release', library), localBuild);
}

const reason = whyNotPrebuilt();
if (reason === null) {
  console.log(`ferrows: using the prebuilt addon ${prebuiltPackage}@${require(`${prebuiltPackage}/package.json`).version}`);
  process.exit(0);
}
if (spawnSync('cargo', ['--version'], { stdio: 'ignore' }).error) {
  console.error(`ferrows: cannot install on ${platformTag()}: ${reason}, and there is no Rust toolchain to build the `
    + 'addon from source (cargo is not on PATH). Either install where the prebuilt package is available and keep '
    + 'optional dependencies (npm install --include=optional), or install Rust (https://rustup.rs) and run npm install '
    + 'again.');
  process.exit(1);
}
console.log(`ferrows: building the native addon from source, because ${reason}`);
const cli = napiCli();
if (cli) run(process.execPath, [cli, 'build', '--platform', '--release', '--js', 'native.js', '--dts', 'native.d.ts']);
else cargoBuild();
