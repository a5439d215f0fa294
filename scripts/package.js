'use strict';
// `npm run package`: the two tarballs a release publishes, into dist/ (or the folder given as the first argument):
// ferrows-<version>.tgz, whose optionalDependencies name the platform package, and ferrows-<platform>-<version>.tgz
// with the prebuilt addon. The platform package is laid out by @napi-rs/cli (create-npm-dirs, artifacts) in a
// staging folder, so the checkout's package.json is never rewritten. (`napi pre-publish` would write the
// optionalDependencies too, but it rewrites package.json in place, needs a git checkout and publishes.)
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { prebuiltPackage, localBuild } = require('../lib/addon.js');

const root = path.join(__dirname, '..');
const out = path.resolve(process.argv[2] || path.join(root, 'dist'));
const napi = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js');
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });

// A release build of the current sources (a no-op when it is fresh).
run(process.execPath, [napi, 'build', '--platform', '--release', '--js', 'native.js', '--dts', 'native.d.ts'], root);

const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrows-package-'));
try {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  for (const entry of [...manifest.files, 'README.md']) {
    fs.cpSync(path.join(root, entry), path.join(stage, entry), { recursive: true });
  }
  manifest.optionalDependencies = { [prebuiltPackage]: manifest.version };
  fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);

  fs.mkdirSync(path.join(stage, 'artifacts'));
  fs.copyFileSync(localBuild, path.join(stage, 'artifacts', path.basename(localBuild)));
  run(process.execPath, [napi, 'create-npm-dirs', '--cwd', stage], root);
  run(process.execPath, [napi, 'artifacts', '--cwd', stage, '--output-dir', 'artifacts', '--npm-dir', 'npm'], root);

  fs.mkdirSync(out, { recursive: true });
  const platformDir = path.join(stage, 'npm', prebuiltPackage.slice('ferrows-'.length));
  for (const dir of [stage, platformDir]) {
    const [{ filename, size }] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', out], dir));
    console.log(`${path.join(out, filename)}  ${(size / 1024 / 1024).toFixed(2)} MiB`);
  }
} finally {
  fs.rmSync(stage, { recursive: true, force: true });
}
