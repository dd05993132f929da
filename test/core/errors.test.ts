import { describe, expect, it } from 'vitest';
import { describeError } from '../../core/errors.ts';

describe('describeError', () => {
  it("keeps an error's words whether it is an Error, one read back from the store, or something else", () => {
    expect(describeError(new TypeError('boom'))).toMatchObject({ name: 'TypeError', message: 'boom' });
    // A dead letter's error comes back from the store as JSON, not as an Error.
    expect(describeError({ name: 'RetryableError', message: 'connection lost' })).toEqual({ name: 'RetryableError', message: 'connection lost' });
    expect(describeError({ code: 'E1' })).toEqual({ name: 'Error', message: '{"code":"E1"}' });
    expect(describeError('plain')).toEqual({ name: 'Error', message: 'plain' });
  });
});
