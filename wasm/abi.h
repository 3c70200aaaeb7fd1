/*
 * The ABI between the wasm core and the TypeScript loader (ts/wasm/).
 *
 * The core is a pure library over its own linear memory: it does no I/O.
 * Its one import is env.emscripten_notify_memory_growth, which emscripten
 * adds for a growable memory; the loader answers it with a no-op (views of
 * memory are re-made on every access). TypeScript allocates with
 * p11w_alloc, writes inputs, calls an entry point and reads results back;
 * _initialize is called once per instance before anything else.
 *
 *  - Strings going in are NUL-terminated UTF-8 (paths, program names);
 *    file contents go in as (pointer, length) and may hold any byte.
 *  - Results come out as a record stream owned by the object that made it,
 *    valid until that object is freed. One record:
 *
 *        u8  tag
 *        u32 num                 (little-endian, meaning depends on tag)
 *        u32 a_len, a_len bytes  (first string, no terminator)
 *        u32 b_len, b_len bytes  (second string, no terminator)
 *
 *  - Every object a caller gets from a *_new function is released by the
 *    matching *_free; nothing else needs freeing by the caller except what
 *    it got from p11w_alloc.
 *
 * wasm32 has 4-byte `long` and pointers: no native CK_* struct layout is
 * ever shared with this core; the bridge converts.
 */
#ifndef P11W_ABI_H
#define P11W_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __EMSCRIPTEN__
#include <emscripten/emscripten.h>
#define P11W_EXPORT EMSCRIPTEN_KEEPALIVE
#else
#define P11W_EXPORT
#endif

/* How TypeScript reports what happened when it tried to read a file or dir. */
enum {
	P11W_IO_OK = 0,          /* data holds the contents */
	P11W_IO_MISSING = 1,     /* ENOENT / ENOTDIR */
	P11W_IO_DENIED = 2,      /* EACCES / EPERM */
	P11W_IO_ERROR = 3,       /* anything else; data holds the OS error text */
	P11W_IO_STAT_FAILED = 4, /* a directory entry could not be stat()ed (dangling link) */
	P11W_IO_IS_DIR = 5,      /* a directory entry that is itself a directory */
};

P11W_EXPORT void *p11w_alloc(size_t size);
P11W_EXPORT void p11w_free(void *ptr);

#endif
