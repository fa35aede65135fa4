'use strict';
/*
 * What every stand-in shares for talking to its caller: the tool name that
 * prefixes warnings, the error that carries an exit status (ToolError, die),
 * stdout/stderr writers, and BSD getopt(3) with usage messages.
 */

let TOOL = 'pkgsrc';

/** Set the name warnings are prefixed with (the running tool). */
function setTool(name) {
  TOOL = name;
}

/** The running tool's name, as warnings and the User-Agent show it. */
function toolName() {
  return TOOL;
}

class ToolError extends Error {
  constructor(message, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

function die(message, exitCode = 1) {
  throw new ToolError(message, exitCode);
}

function warn(message) {
  process.stderr.write(`${TOOL}: ${message}\n`);
}

function say(text) {
  process.stdout.write(text);
}

/** BSD getopt: flags may be bundled, option arguments attached or separate. */
function getopt(argv, spec, usage) {
  const opts = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      i++;
      break;
    }
    if (a.length < 2 || a[0] !== '-') break;
    for (let j = 1; j < a.length; j++) {
      const c = a[j];
      const k = spec.indexOf(c);
      if (c === ':' || k < 0) {
        warn(`illegal option -- ${c}`);
        usage();
      }
      if (spec[k + 1] === ':') {
        let val = a.slice(j + 1);
        if (val === '') {
          i++;
          if (i >= argv.length) {
            warn(`option requires an argument -- ${c}`);
            usage();
          }
          val = argv[i];
        }
        opts.push([c, val]);
        break;
      }
      opts.push([c, true]);
    }
  }
  return { opts, args: argv.slice(i) };
}

function usageFn(text) {
  return () => {
    process.stderr.write(`usage: ${text}\n`);
    throw new ToolError('', 1);
  };
}

module.exports = { setTool, toolName, ToolError, die, warn, say, getopt, usageFn };
