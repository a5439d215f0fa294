'use strict';
// `npm test`'s first step: the real components the end-to-end tests start (Debian's redis-server for the backplane
// tests, Chromium for the browser test). Missing ones are installed with apt-get when we are root on Debian;
// otherwise the tests stop here with the command to run, rather than failing one by one or being skipped.
const { spawnSync } = require('child_process');

const NEEDED = [
  { command: 'redis-server', pkg: 'redis-server', usedBy: 'the backplane tests' },
  { command: 'chromium', pkg: 'chromium', usedBy: 'the browser test' },
];

const onPath = (command) => spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
const missing = NEEDED.filter(({ command }) => !onPath(command));
if (missing.length === 0) process.exit(0);

const packages = missing.map(({ pkg }) => pkg);
const why = missing.map(({ pkg, usedBy }) => `${pkg} (${usedBy})`).join(' and ');
const command = `apt-get update && apt-get install -y ${packages.join(' ')}`;
if (process.getuid?.() !== 0 || !onPath('apt-get')) {
  console.error(`pretest: the tests need ${why}. Install ${packages.length > 1 ? 'them' : 'it'} with:\n  sudo sh -c '${command}'`);
  process.exit(1);
}
console.log(`pretest: installing the Debian package${packages.length > 1 ? 's' : ''} ${why}: ${command}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
for (const args of [['update', '-qq'], ['install', '-y', '-qq', ...packages]]) {
  const result = spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env });
  if (result.status !== 0) {
    console.error(`pretest: apt-get ${args[0]} failed; install ${packages.join(' ')} by hand: ${command}`);
    process.exit(1);
  }
}
const stillMissing = missing.filter(({ command: c }) => !onPath(c)).map(({ command: c }) => c);
if (stillMissing.length) {
  console.error(`pretest: ${stillMissing.join(', ')} still not on PATH after installing ${packages.join(' ')}`);
  process.exit(1);
}
