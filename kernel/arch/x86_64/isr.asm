; Entry stubs for the 32 exception vectors. Each makes the stack look the
; same, whether or not the CPU pushed an error code (Intel SDM Vol. 3A §6.13,
; §6.14.2), so one common path can save the registers in the layout of
; struct trap_frame (trap.h) and call trap_dispatch(frame).

extern trap_dispatch

; Vectors for which the CPU pushes an error code (SDM Vol. 3A Table 6-1).
%define HAS_ERROR_CODE(v) ((v) == 8 || (v) == 10 || (v) == 11 || (v) == 12 || (v) == 13 || (v) == 14 || (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)
%define EXCEPTION_VECTORS 32
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

isr_common:
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
    iretq

; The stubs' addresses, by vector, for idt_init.
section .rodata
global isr_stub_table
align 8
isr_stub_table:
%assign v 0
%rep EXCEPTION_VECTORS
    dq isr_ %+ v
%assign v v + 1
%endrep
