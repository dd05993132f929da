import { defineDag, task } from 'hubflow';

export const quick = (value: unknown) => async () => {
  await new Promise((r) => setTimeout(r, 5));
  return value;
};

export const etl = defineDag({
  id: 'http-etl',
  description: 'extract, transform, load',
  owner: 'data-team',
  schedule: { cron: '0 3 * * *', timezone: 'Europe/Berlin' },
  tags: ['master-data'],
  tasks: {
    extract: task({ run: quick(['a', 'b']) }),
    transform: task<string>({ map: 'extract', run: (ctx) => ctx.item.toUpperCase() }),
    load: task({ after: ['transform'], trigger: 'all_done', run: quick('loaded') }),
  },
});
