// The YAML library, for one call at a time. The agent reads YAML once, at start
// (its config), and never again; the library is over a third of the bundle's
// source and more once its parser has run (compiled code, feedback, shapes), and
// an ES module, once loaded, is never unloaded. So the bundle (scripts/bundle.mjs)
// builds the library as a CommonJS file of its own and replaces this module with
// one that require()s it for the call and then drops it from require's cache:
// the next full collection frees it. Here (tests, the tsc build) it is simply
// the library. Nothing the callback returns may keep a reference into it (a
// Document, a Node): return plain values.

import * as yaml from 'yaml';

export type Yaml = typeof yaml;

export function withYaml<T>(use: (y: Yaml) => T): T {
  return use(yaml);
}
