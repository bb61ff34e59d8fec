; The application processors' way from real mode to the kernel (issue 16).
; A SIPI starts a CPU in real mode at vector * 4 KiB; smp.c copies this blob
; to TRAMPOLINE_PHYS (identity-mapped for the occasion), fills the parameter
; block at its end and sends INIT, SIPI, SIPI. The code runs at its physical
; address, so every address is computed as T(label); it switches to
; protected mode, loads the BSP's CR4, CR3 and EFER (LME, NXE), enables
; paging (the identity mapping keeps the next instruction fetchable) and
; jumps in 64-bit mode to ap_entry(cpu) on the CPU's own kernel stack.
; Nothing here is linked to run in place: it is data the kernel copies.

%include "layout.inc"            ; TRAMPOLINE_PHYS, MSR_EFER

%define T(x) (TRAMPOLINE_PHYS + (x) - trampoline_start)
%define CR0_PE (1 << 0)
; Selectors of tr_gdt
%define TR_CS32 0x08
%define TR_DS 0x10
%define TR_CS64 0x18

section .rodata progbits alloc noexec nowrite align=16

global trampoline_start, trampoline_end, trampoline_params
bits 16
trampoline_start:
    cli
    cld
    xor ax, ax
    mov ds, ax
    o32 lgdt [T(tr_gdtr)]
    mov eax, cr0
    or eax, CR0_PE
    mov cr0, eax
    jmp dword TR_CS32:T(tr_pm32)

bits 32
tr_pm32:
    mov ax, TR_DS
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, [T(tr_cr4)]
    mov cr4, eax
    mov eax, [T(tr_cr3)]
    mov cr3, eax
    mov ecx, MSR_EFER
    mov eax, [T(tr_efer)]
    mov edx, [T(tr_efer) + 4]
    wrmsr
    mov eax, [T(tr_cr0)]        ; PE, PG, WP...: paging on, long mode active
    mov cr0, eax
    jmp TR_CS64:T(tr_lm64)

bits 64
tr_lm64:
    mov ax, TR_DS
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rsp, [abs T(tr_stack)]
    mov rdi, [abs T(tr_cpu)]
    mov rax, [abs T(tr_entry)]
    xor ebp, ebp                ; the backtrace stops here
    push rbp                    ; a return address of 0: ap_entry never returns
    jmp rax

align 8
tr_gdt:
    dq 0
    dq 0x00CF9A000000FFFF       ; 32-bit code, flat
    dq 0x00CF92000000FFFF       ; data, flat
    dq 0x00AF9A000000FFFF       ; 64-bit code
tr_gdtr:
    dw 4 * 8 - 1
    dd T(tr_gdt)

; The parameter block (struct trampoline_params in smp.c, same order).
align 8
trampoline_params:
tr_cr0:   dq 0
tr_cr3:   dq 0                  ; below 4 GiB: loaded in 32-bit mode
tr_cr4:   dq 0
tr_efer:  dq 0
tr_stack: dq 0
tr_entry: dq 0
tr_cpu:   dq 0
trampoline_end:
