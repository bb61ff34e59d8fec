/**
 * A cpio "newc" archive writer (the format of Linux's initramfs, read by
 * kernel/lib/cpio.c): each entry is a 110-byte ASCII header ("070701" and 13
 * eight-digit hex fields), the NUL-terminated name padded to 4 bytes, the
 * data padded to 4 bytes; a "TRAILER!!!" entry ends the archive, which is
 * padded to 512 bytes as GNU cpio pads it.
 *
 * Output is deterministic: entries in the given order (parent directories
 * first, added when missing), inode numbers counted from 1, mtime 0, uid and
 * gid 0, so the same files give byte-identical archives.
 */

/** One file of the archive. */
export interface CpioFile {
  /** Path inside the archive, relative ("bin/hello"): no leading "/", no "." or ".." parts. */
  name: string;
  data: Uint8Array;
  /** Permission bits; default 0o755. */
  perm?: number;
}

/** A file that cannot go into a newc archive; the message says why. */
export class CpioError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CpioError";
  }
}

export const CPIO_MAGIC = "070701";
export const CPIO_TRAILER = "TRAILER!!!";
export const CPIO_HEADER_SIZE = 110;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
/** Largest size a header's eight hex digits can hold. */
const FIELD_MAX = 0xffff_ffff;

const pad4 = (n: number) => (4 - (n % 4)) % 4;

function checkName(name: string): void {
  if (name === "" || name.startsWith("/") || name.endsWith("/")) {
    throw new CpioError(`cpio: '${name}' must be a relative path without a trailing '/'`);
  }
  if (name.split("/").some((p) => p === "" || p === "." || p === "..")) {
    throw new CpioError(`cpio: '${name}' has an empty, '.' or '..' component`);
  }
  if (name.includes("\0") || name === CPIO_TRAILER) {
    throw new CpioError(`cpio: '${name}' cannot be a file name in an archive`);
  }
}

function header(fields: number[]): string {
  return CPIO_MAGIC + fields.map((f) => f.toString(16).padStart(8, "0")).join("");
}

/** The archive holding `files` (their parent directories added first). */
export function writeCpio(files: readonly CpioFile[]): Uint8Array {
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let ino = 1;
  const push = (b: Uint8Array) => {
    chunks.push(b);
    size += b.length;
  };
  const entry = (name: string, mode: number, data: Uint8Array, nlink: number) => {
    const nameBytes = enc.encode(name + "\0");
    if (data.length > FIELD_MAX) throw new CpioError(`cpio: '${name}' is larger than 4 GiB`);
    // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    const fields = [ino++, mode, 0, 0, nlink, 0, data.length, 0, 0, 0, 0, nameBytes.length, 0];
    push(enc.encode(header(fields)));
    push(nameBytes);
    push(new Uint8Array(pad4(CPIO_HEADER_SIZE + nameBytes.length)));
    push(data);
    push(new Uint8Array(pad4(data.length)));
  };
  const seen = new Set<string>();
  for (const f of files) {
    checkName(f.name);
    if (seen.has(f.name)) throw new CpioError(`cpio: '${f.name}' is given twice`);
    const parts = f.name.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (seen.has(dir)) continue;
      seen.add(dir);
      entry(dir, S_IFDIR | 0o755, new Uint8Array(0), 2);
    }
    seen.add(f.name);
    entry(f.name, S_IFREG | ((f.perm ?? 0o755) & 0o7777), f.data, 1);
  }
  ino = 0; // the trailer's fields are all zero but nlink
  entry(CPIO_TRAILER, 0, new Uint8Array(0), 1);
  push(new Uint8Array((512 - (size % 512)) % 512));
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
