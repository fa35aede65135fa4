/**
 * The build's observer (build/events) as oclif hook events, for plugins
 * (`buildimage plugins install|link`): `stage:before`, `stage:after` and
 * `build:done`, each given the payload (docs/plugins.md) plus oclif's own
 * `config` and `context`.
 *
 * A plugin's hook that throws in `stage:before` fails the stage with one
 * line naming the plugin (a plugin may veto a stage, as a before-hook of
 * the definition may); in `stage:after` and `build:done` the stage or the
 * build is already over, so it is a warning naming the plugin. Each call is
 * bounded by the step timeout (--timeout).
 */
import type { Config } from '@oclif/core';
import { BuildError, oneLine } from '../core/errors.js';
import { log } from '../core/log.js';
import { EVENT_NAMES, type BuildObserver, type EventName } from '../build/events.js';

export function pluginObserver(config: Config, timeoutMs: number): BuildObserver {
  const fire = async (event: EventName, payload: object, what: string, fail: boolean) => {
    const r = await config.runHook(event, { ...payload }, timeoutMs, true);
    for (const f of r.failures) {
      const line = `plugin ${f.plugin.name}'s ${event} hook ${what} failed: ${oneLine(f.error)}`;
      if (fail) throw new BuildError(line, { hint: `fix or remove the plugin (\`buildimage plugins uninstall ${f.plugin.name}\`)` });
      log.warn(line);
    }
  };
  return {
    stageBefore: (p) => fire(EVENT_NAMES.stageBefore, p, `(${p.stage})`, true),
    stageAfter: (p) => fire(EVENT_NAMES.stageAfter, p, `(${p.stage}, ${p.outcome})`, false),
    buildDone: (p) => fire(EVENT_NAMES.buildDone, p, `(${p.ok ? 'ok' : 'failed'})`, false),
  };
}
