/**
 * Writes the top-level Jenkinsfile examples from templates/jenkins (the
 * files `buildimage init` renders), so the two never drift; a unit test
 * fails when they differ. Run: node build/scripts/render-examples.js
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXAMPLE_VALUES, renderJenkinsfile } from '../src/setup/init.js';

export const EXAMPLES = {
  'Jenkinsfile.example': 'stages',
  'Jenkinsfile.single.example': 'single',
  'Jenkinsfile.publish-rerun.example': 'publish-rerun',
  'Jenkinsfile.multi.example': 'multi',
} as const;

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const [file, kind] of Object.entries(EXAMPLES)) {
    writeFileSync(join(REPO_ROOT, file), renderJenkinsfile(kind, EXAMPLE_VALUES));
    console.log(`wrote ${file}`);
  }
}
