import { chmod, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * Files holding personal data (national ids, pay, bank details, birth dates) are readable by
 * hubflow's own user alone: 0600 files in 0700 folders, set when they are created rather than
 * left to the umask, which a container or service manager may set to anything.
 */
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/**
 * Creates `dir` and any missing parent as 0700, then tightens each folder from `root` down to
 * `dir` that this user owns and others may read or enter: a folder an earlier version created
 * 0755 stops exposing the files already in it. A folder owned by someone else is left alone
 * (only its owner may change it); `dir` outside `root` is the only one looked at.
 */
export async function privateDir(dir: string, root: string = dir): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const uid = process.getuid?.();
  for (const folder of foldersFrom(root, dir)) {
    const info = await stat(folder);
    if ((info.mode & 0o077) !== 0 && info.uid === uid) await chmod(folder, info.mode & 0o7700);
  }
}

function foldersFrom(root: string, dir: string): string[] {
  const relative = path.relative(path.resolve(root), path.resolve(dir));
  if (relative.startsWith('..') || path.isAbsolute(relative)) return [dir];
  const folders = [path.resolve(root)];
  for (const part of relative ? relative.split(path.sep) : []) folders.push(path.join(folders.at(-1)!, part));
  return folders;
}
