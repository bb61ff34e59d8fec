; Entry stubs for the 32 exception vectors. Each makes the stack look the
; same, whether or not the CPU pushed an error code (Intel SDM Vol. 3A §6.13,
; §6.14.2), so one common path can save the registers in the layout of
; struct trap_frame (trap.h) and call trap_dispatch(frame). The same path
; serves the device interrupts (IRQ_VECTOR_FIRST.., trap.h). An entry from user
; mode (CS RPL 3) swaps GS to the kernel's per-CPU area first, and the return
; swaps it back; trap_return is also how a new process enters user mode.

extern trap_dispatch
extern smap_enabled

; Vectors for which the CPU pushes an error code (SDM Vol. 3A Table 6-1).
%define HAS_ERROR_CODE(v) ((v) == 8 || (v) == 10 || (v) == 11 || (v) == 12 || (v) == 13 || (v) == 14 || (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)
%define EXCEPTION_VECTORS 32
; Device interrupt vectors with stubs (trap.h: IRQ_VECTOR_FIRST, IRQ_VECTORS).
%define IRQ_VECTOR_FIRST 32
%define IRQ_VECTORS 16
%define SPURIOUS_VECTOR 255
; Offset of the CPU-pushed RIP from the stack pointer once the 15
; general registers, the vector and the error code are on the stack.
%define FRAME_RIP_OFFSET (17 * 8)

section .text

%macro ISR 1
isr_%1:
%if HAS_ERROR_CODE(%1) == 0
    push 0                      ; no error code from the CPU: keep the frame uniform
%endif
    push %1
    jmp isr_common
%endmacro

%assign v 0
%rep EXCEPTION_VECTORS
ISR v
%assign v v + 1
%endrep
%assign v IRQ_VECTOR_FIRST
%rep IRQ_VECTORS
ISR v
%assign v v + 1
%endrep
ISR SPURIOUS_VECTOR

isr_common:
    test byte [rsp + 24], 3     ; CS of the interrupted code: RPL 3 is user mode
    jz .from_kernel
    swapgs
.from_kernel:
    ; No handler runs with user pages open (RFLAGS.AC): iretq restores the
    ; interrupted AC (a fault inside a user copy resumes with it set).
    cmp byte [rel smap_enabled], 0
    je .ac_clear
    clac
.ac_clear:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp                ; struct trap_frame *
    ; A frame record as if the interrupted instruction had called us, so a
    ; backtrace taken inside the handler (panic) shows where the fault was.
    push qword [rsp + FRAME_RIP_OFFSET]
    push rbp
    mov rbp, rsp
    cld                         ; the C ABI requires DF clear
    call trap_dispatch
    add rsp, 16                 ; drop the frame record
; rsp = struct trap_frame *: restore it and return to the code it describes.
global trap_return
trap_return:
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16                 ; vector and error code
    test byte [rsp + 8], 3      ; returning to user mode: give GS back to the process
    jz .to_kernel
    swapgs
.to_kernel:
    iretq

; A new thread's first instructions (sched.c builds its stack so that
; context_switch returns here). r12 = the thread's function, r13 = its argument.
extern sched_thread_begin
extern kthread_exit
global kthread_trampoline
kthread_trampoline:
    call sched_thread_begin
    mov rdi, r13
    call r12
    mov edi, eax
    call kthread_exit           ; never returns

; A new process: its trap frame lies right above; enter user mode through it.
global uthread_trampoline
uthread_trampoline:
    call sched_thread_begin
    jmp trap_return

; void context_switch(u64 *save_rsp, u64 new_rsp): save the callee-saved
; registers on this stack, store its rsp, continue on the other one.
global context_switch
context_switch:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    mov [rdi], rsp
    mov rsp, rsi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

; The stubs' addresses, by vector, for idt_init: exceptions, then the IRQs, then spurious.
section .rodata
global isr_stub_table
align 8
isr_stub_table:
%assign v 0
%rep EXCEPTION_VECTORS
    dq isr_ %+ v
%assign v v + 1
%endrep
global irq_stub_table
irq_stub_table:
%assign v IRQ_VECTOR_FIRST
%rep IRQ_VECTORS
    dq isr_ %+ v
%assign v v + 1
%endrep
global spurious_stub
spurious_stub:
    dq isr_ %+ SPURIOUS_VECTOR
