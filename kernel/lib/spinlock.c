/* Spinlocks and their order checks (spinlock.h). */
#include <cpu.h>
#include <panic.h>
#include <percpu.h>
#include <smp.h>
#include <spinlock.h>
#include <tlb.h>

void spin_lock(struct spinlock *l)
{
	bool irq_on = (read_rflags() & RFLAGS_IF) != 0;
	cli();
	struct percpu *c = this_cpu();
	if (__atomic_load_n(&l->cpu, __ATOMIC_RELAXED) == c->cpu_id)
		panic("lock '%s' taken twice on CPU %u", l->name, c->cpu_id);
	if (c->nheld > 0) {
		const struct spinlock *top = c->held[c->nheld - 1];
		if (top->order >= l->order)
			panic("lock order violation on CPU %u: taking '%s' (order %u) while holding '%s' (order %u)",
			      c->cpu_id, l->name, l->order, top->name, top->order);
	}
	if (c->nheld == LOCK_HELD_MAX)
		panic("lock '%s': CPU %u holds %d locks already", l->name, c->cpu_id, LOCK_HELD_MAX);
	while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE)) {
		while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED)) {
			/* The holder may be waiting for this CPU to invalidate (tlb.h). */
			tlb_poll();
			__builtin_ia32_pause();
		}
	}
	__atomic_store_n(&l->cpu, c->cpu_id, __ATOMIC_RELAXED);
	if (c->nheld == 0)
		c->irq_was_on = irq_on;
	c->held[c->nheld++] = l;
}

void spin_unlock(struct spinlock *l)
{
	struct percpu *c = this_cpu();
	if (c->nheld == 0 || c->held[c->nheld - 1] != l)
		panic("lock '%s' released on CPU %u but not the last one taken there", l->name,
		      c->cpu_id);
	c->nheld--;
	__atomic_store_n(&l->cpu, LOCK_NO_CPU, __ATOMIC_RELAXED);
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
	if (c->nheld == 0 && c->irq_was_on)
		__asm__ volatile("sti" : : : "memory");
}

bool spin_held(const struct spinlock *l)
{
	return __atomic_load_n(&l->locked, __ATOMIC_RELAXED) &&
	       __atomic_load_n(&l->cpu, __ATOMIC_RELAXED) == this_cpu()->cpu_id;
}

bool spin_lock_outer(struct spinlock *l)
{
	if (smp_cpu_count() < 2 || spin_held(l))
		return false;
	spin_lock(l);
	return true;
}

void spin_unlock_taken(struct spinlock *l, bool took)
{
	if (took)
		spin_unlock(l);
}

void lock_check_switch(const char *where)
{
	struct percpu *c = this_cpu();
	if (c->nheld)
		panic("lock '%s' held across a context switch (%s) on CPU %u",
		      c->held[c->nheld - 1]->name, where, c->cpu_id);
	tlb_check_closed(where);
}

void lock_check_switch_except(const char *where, const struct spinlock *allowed)
{
	struct percpu *c = this_cpu();
	for (u32 i = 0; i < c->nheld; i++)
		if (c->held[i] != allowed)
			panic("lock '%s' held across a context switch (%s) on CPU %u",
			      c->held[i]->name, where, c->cpu_id);
}

u32 locks_held(void)
{
	return this_cpu()->nheld;
}
