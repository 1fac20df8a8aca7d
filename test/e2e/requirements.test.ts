// Before any namespace is built: every command the tests, the demo and the
// bench run is installed (scripts/requirements.txt, installed by
// scripts/setup.sh). A fresh machine without setup.sh fails here with the
// package names, not in the middle of faults-restart.

import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeMissing, missingRequirements } from '../../src/lab/requirements';

test('every required command is installed (run scripts/setup.sh if not)', () => {
  const missing = missingRequirements();
  assert.deepEqual(missing, [], missing.length ? describeMissing(missing) : '');
});
