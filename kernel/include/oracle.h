/*
 * Checkpoints for the runner's external oracle: at a checkpoint the kernel
 * prints its own view of the page tables and waits until the runner has
 * compared it with QEMU's (`info mem`, `info tlb`, `gva2gpa` over QMP).
 */
#ifndef OUROBOROS_ORACLE_H
#define OUROBOROS_ORACLE_H

#include <types.h>

/* True when booted with `oracle`: a runner is there to answer checkpoints. */
bool oracle_enabled(void);

/*
 * Print `# oracle-begin NAME`, the page dump, `# v2p VA PA|none` for each
 * probe address, `# CHECKPOINT NAME`, then wait for the runner's byte on the
 * oracle UART. Does nothing unless oracle_enabled().
 */
void oracle_checkpoint(const char *name, const u64 *probes, size_t nprobes);

/* The two halves of a checkpoint, for a caller that prints its own dump lines between them. */
void oracle_begin(const char *name);
void oracle_end(const char *name);

#endif
