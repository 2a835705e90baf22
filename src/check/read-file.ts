// Reading a file a user names on the command line (a counterexample, a scope): only a regular file,
// and only up to a bound, so a FIFO, /dev/zero or a runaway file is refused at once instead of
// waited on or read into memory.

import { type Stats, closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** Why a file could not be read, as one phrase: "cannot read (ENOENT: ...)", "not a regular file (a FIFO)". */
export class ReadError extends Error {}

/** A file-system error as a message shows it: "ENOENT: no such file or directory", without the path the user already sees. */
export const fsReason = (e: unknown): string => (e as Error).message.split(',')[0];

/** What a path that is not a regular file names, for a message: "a FIFO". */
export function kindOf(st: Stats): string {
  return st.isDirectory() ? 'a directory' : st.isSymbolicLink() ? 'a symbolic link' : st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : 'a device';
}

/** The file's text; `what` names the kind of file in the too-large message ("a counterexample file"). */
export function readBounded(path: string, maxBytes: number, what: string): string {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO with no writer would otherwise block before fstat can refuse it.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new ReadError(`cannot read (${fsReason(e)})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ReadError(`not a regular file (${kindOf(st)})`);
    if (st.size > maxBytes) throw new ReadError(`too large (${st.size} bytes; ${what} is at most ${maxBytes})`);
    const buf = Buffer.alloc(st.size);
    let got = 0;
    try {
      for (let n = 1; n > 0 && got < buf.length; got += n) n = readSync(fd, buf, got, buf.length - got, null);
    } catch (e) {
      throw new ReadError(`cannot read (${fsReason(e)})`);
    }
    return buf.toString('utf8', 0, got);
  } finally {
    closeSync(fd);
  }
}
