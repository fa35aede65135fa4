/**
 * The error a promise rejects with, or a failed assertion when it resolves
 * (assert.rejects hands nothing back to look at). With a class, the error
 * must be one and carry one line, as every error buildimage reports.
 */
import assert from 'node:assert/strict';

export async function rejection(p: Promise<unknown>): Promise<Error>;
export async function rejection<E extends Error>(p: Promise<unknown>, cls: new (...a: never[]) => E): Promise<E>;
export async function rejection(p: Promise<unknown>, cls?: new (...a: never[]) => Error): Promise<Error> {
  try {
    await p;
  } catch (err) {
    if (cls) {
      assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
      assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    }
    return err as Error;
  }
  assert.fail('expected a rejection');
}
