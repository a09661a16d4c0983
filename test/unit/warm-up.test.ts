import { expect, it } from 'vitest';
import { warmUpRound } from '../../src/watcher/warm-up.js';

it('warms up on a creation the watcher resolves as a real CRI one', () => {
  expect(warmUpRound()).toMatchObject({ manager: 'containerd', pod: { name: 'warm-up', namespace: 'warm-up' } });
});
