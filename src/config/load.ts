// Reading agent.yaml and the files it points to (password, CA certificate).

import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { withYamlLoader } from './yaml.js';
import { checkConfig, type AgentConfig } from './schema.js';
import type { Issue } from './validate.js';

export const PASSWORD_ENV = 'XMPP_IOT_AGENT_PASSWORD';
/** A password file that wins over xmpp.password_file (systemd credentials: %d/password). */
export const PASSWORD_FILE_ENV = 'XMPP_IOT_AGENT_PASSWORD_FILE';

export class ConfigError extends Error {
  constructor(readonly issues: Issue[]) {
    super(issues.map((i) => `${i.path}: ${i.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: AgentConfig;
  password: string;
  /** Where the password came from, for the log (never the password). */
  passwordSource: 'environment' | 'password_file' | 'password' | 'credential';
  ca?: string;
  warnings: string[];
}

/** Parse YAML text into a plain value; syntax errors (and a key given twice) become issues with a line number. */
export function parseYaml(text: string): { value?: unknown; issues: Issue[] } {
  // Nothing but blank lines and comments: no document, which the schema then refuses by name.
  if (/^(?:[ \t]*(?:#.*)?(?:\r?\n|$))*$/.test(text)) return { value: null, issues: [] };
  return withYamlLoader(({ load, YAMLException }) => {
    try {
      return { value: load(text) as unknown, issues: [] };
    } catch (err) {
      // Only the reason and the line: the library's full message quotes the text, which may hold a password.
      if (err instanceof YAMLException) return { issues: [{ path: `(yaml line ${err.mark ? err.mark.line + 1 : 1})`, message: err.reason }] };
      return { issues: [{ path: '(yaml)', message: `cannot be read: ${err instanceof Error ? err.name : 'error'}` }] };
    }
  });
}

export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: '(file)', message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  return loadConfigText(text, { baseDir: dirname(resolve(path)), env });
}

export function loadConfigText(text: string, opts: { baseDir: string; env?: NodeJS.ProcessEnv; hostname?: string }): LoadedConfig {
  const env = opts.env ?? process.env;
  const parsed = parseYaml(text);
  if (parsed.issues.length > 0) throw new ConfigError(parsed.issues);
  const { config, issues } = checkConfig(parsed.value, { hostname: opts.hostname ?? (hostname().split('.')[0] || 'gateway') });
  if (!config) throw new ConfigError(issues);

  const problems: Issue[] = [];
  const warnings: string[] = [];
  const x = config.xmpp;

  let password: string | undefined;
  let passwordSource: LoadedConfig['passwordSource'] = 'password';
  if (env[PASSWORD_ENV]) {
    password = env[PASSWORD_ENV];
    passwordSource = 'environment';
  } else if (env[PASSWORD_FILE_ENV] || x.passwordFile) {
    const fromEnv = Boolean(env[PASSWORD_FILE_ENV]);
    const file = fromEnv ? resolve(env[PASSWORD_FILE_ENV]!) : resolve(opts.baseDir, x.passwordFile!);
    const key = fromEnv ? PASSWORD_FILE_ENV : 'xmpp.password_file';
    try {
      password = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      passwordSource = fromEnv ? 'credential' : 'password_file';
      if (password.length === 0) problems.push({ path: key, message: `${file} is empty` });
      const mode = statSync(file).mode;
      if (mode & 0o004) warnings.push(`${key}: ${file} is readable by every user (mode ${(mode & 0o777).toString(8)}); run: chmod 640 ${file}`);
    } catch (err) {
      problems.push({ path: key, message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
    }
  } else if (x.password) {
    password = x.password;
  } else {
    problems.push({ path: 'xmpp.password', message: `no password: set xmpp.password_file (recommended), xmpp.password, or the environment variable ${PASSWORD_ENV}` });
  }

  let ca: string | undefined;
  if (x.tls.caFile) {
    const file = resolve(opts.baseDir, x.tls.caFile);
    try {
      ca = readFileSync(file, 'utf8');
      if (!ca.includes('-----BEGIN CERTIFICATE-----')) problems.push({ path: 'xmpp.tls.ca_file', message: `${file} holds no PEM certificate` });
    } catch (err) {
      problems.push({ path: 'xmpp.tls.ca_file', message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
    }
  }

  // A relative state_dir is relative to the config file, like every other path in it.
  config.store.stateDir = resolve(opts.baseDir, config.store.stateDir);

  if (problems.length > 0 || password === undefined) throw new ConfigError(problems);
  return { config, password, passwordSource, ca, warnings };
}
