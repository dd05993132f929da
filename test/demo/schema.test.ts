import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hubDdl } from '../../demo/schema.ts';

describe('the demo hub DDL in the README', () => {
  it('is exactly what hubflow creates', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(`\`\`\`sql\n${hubDdl()}\n\`\`\``);
  });
});
