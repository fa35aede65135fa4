/** stage:before: as seal begins, the image root is what the image is made of; measure it. */
import { measure, measured } from './sizes.js';

export default async function measureBeforeSeal(options) {
  if (options.version !== 1 || options.stage !== 'seal' || !options.imageRoot) return;
  measured.set(options.buildId, await measure(options.imageRoot));
}
