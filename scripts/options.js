'use strict';
// Command-line options of the dev scripts: `--name value` pairs, everything else positional.

/** The value after `--name` in `argv`, or `fallback`. */
function option(argv, name, fallback) {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
}

/** The arguments that are neither `--name` nor the value of one of `valued` (names without dashes). */
function positional(argv, valued) {
  return argv.filter((a, i) => !a.startsWith('--') && !valued.some((name) => argv[i - 1] === `--${name}`));
}

module.exports = { option, positional };
