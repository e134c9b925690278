// The YAML libraries, for one call at a time. The agent reads YAML once, at
// start (its config), and never again, so the bundle (scripts/bundle.mjs) builds
// each library as a CommonJS file of its own and replaces this module with one
// that require()s it for the call and then drops it from require's cache: the
// next full collection frees it (an ES module, once loaded, is never unloaded).
// Here (tests, the tsc build) they are simply the libraries. Nothing a callback
// returns may keep a reference into them (a Document, a Node): return plain values.
//
// Two libraries, each for what it does best:
// - js-yaml reads the config at every start: a plain load, no document model.
//   Measured (5 cold processes, both as minified chunks): loading and parsing a gateway's config costs about
//   6 ms of CPU against 17 ms with `yaml`, on the path to online.
// - `yaml` edits a person's config for the image tool (src/deploy/image.ts) and
//   keeps their comments, which a plain load and dump would lose. It never runs
//   on the gateway.

import * as jsYaml from 'js-yaml';
import * as yaml from 'yaml';

export type Yaml = typeof yaml;
export type YamlLoader = Pick<typeof jsYaml, 'load' | 'YAMLException'>;

/** The document library (comments kept), for the image tool. */
export function withYaml<T>(use: (y: Yaml) => T): T {
  return use(yaml);
}

/** The plain loader, for the config the agent reads at start. */
export function withYamlLoader<T>(use: (y: YamlLoader) => T): T {
  return use(jsYaml);
}
