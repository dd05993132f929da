import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { root } from './support.ts';

export interface RunningConsumer {
  child: ChildProcess;
  exited: Promise<number | null>;
  output: () => string;
}

/** `hubflow cdc run` as its own process, with the hub and warehouse of `env`; resolves once it streams. */
export async function startConsumer(env: Record<string, string>): Promise<RunningConsumer> {
  const child = spawn(process.execPath, [path.join(root, 'bin/hubflow.js'), 'cdc', 'run'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.includes('streaming changes')) resolve();
    });
    void exited.then(() => reject(new Error(`the consumer exited before streaming:\n${output}`)));
  });
  return { child, exited, output: () => output };
}

/** As a supervisor does: starts the consumer again until it streams (the server may still be starting). */
export async function superviseConsumer(env: Record<string, string>, timeoutMs = 60_000): Promise<RunningConsumer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await startConsumer(env);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
