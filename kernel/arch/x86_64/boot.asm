; Entry from a PVH loader (QEMU -kernel), a multiboot2 loader (GRUB) or a
; multiboot1 loader (iPXE's BIOS build), in 32-bit protected mode with paging
; off. One path for both: load the generated
; boot page tables, enable PAE, long mode and paging, then jump to the
; higher-half C entry kmain(protocol, boot_info_phys).

%include "layout.inc"

; Multiboot2 (Multiboot2 specification, §3.1)
%define MB2_HEADER_MAGIC    0xE85250D6
%define MB2_ARCH_I386       0
%define MB2_LOADER_MAGIC    0x36D76289
; Multiboot 1 (Multiboot Specification 0.6.96, §3.1.1-§3.1.3, §3.2)
%define MB1_HEADER_MAGIC    0x1BADB002
%define MB1_PAGE_ALIGN      (1 << 0)    ; modules on page boundaries
%define MB1_MEMORY_INFO     (1 << 1)    ; mem_* and the memory map wanted
%define MB1_AOUT_KLUDGE     (1 << 16)   ; load by the address fields, not as ELF
%define MB1_LOADER_MAGIC    0x2BADB002
; PVH (Xen public/elfnote.h): the 32-bit physical entry point
%define XEN_ELFNOTE_PHYS32_ENTRY 18

; Architectural registers and bits (Intel SDM Vol. 3A §2.5, §4.1). MSR_EFER,
; EFER_*, CPUID_*, CR4_* and COM1's UART come from layout.inc (linker/arch.ts).
%define CR0_PE              (1 << 0)
%define CR0_WP              (1 << 16)
%define CR0_PG              (1 << 31)
%define PTE_NX_HIGH_DWORD   (PTE_NX >> 32)  ; PTE_NX, seen in an entry's upper half

; Selectors of boot_gdt
%define BOOT_CS64           0x08
%define BOOT_DS             0x10

extern boot_pml4_phys            ; defined by the linker script
extern boot_tables_end_phys
extern kmain
extern __stack_top
extern __image_start
extern __data_end
extern __image_end

section .multiboot2 progbits alloc noexec nowrite align=8
mb2_header:
    dd MB2_HEADER_MAGIC
    dd MB2_ARCH_I386
    dd mb2_header_end - mb2_header
    dd 0x100000000 - (MB2_HEADER_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header))
    ; end tag: type 0, flags 0, size 8
    dw 0
    dw 0
    dd 8
mb2_header_end:

; Multiboot 1, with the a.out kludge: iPXE's BIOS build loads only ELF32 or
; a kludge image, so a loader takes [load_addr, load_end_addr) from the file,
; zeroes up to bss_end_addr and jumps to entry_addr, all physical addresses.
; The header is DISARMED here: its checksum is 0. QEMU's -kernel tries
; multiboot1 before PVH and would take an armed header (refusing an ELF64
; without the kludge, loading it raw with it), so kernel.elf must not carry
; one. tools/image/multiboot1.ts lays the segments out flat from load_addr,
; checks these fields against the ELF and writes the checksum into its copy.
; It shares this section, which the linker script puts first (8 KiB limit).
align 4
global mb1_header
mb1_header:
    dd MB1_HEADER_MAGIC
    dd MB1_PAGE_ALIGN | MB1_MEMORY_INFO | MB1_AOUT_KLUDGE
    dd 0                        ; checksum: written by tools/image/multiboot1.ts
    dd mb1_header               ; header_addr (.boot is linked at its physical address)
    dd __image_start            ; load_addr
    dd __data_end - KERNEL_VIRT_OFFSET   ; load_end_addr: the end of the file-backed part
    dd __image_end - KERNEL_VIRT_OFFSET  ; bss_end_addr: bss and stack are zeroed
    dd boot_entry_mb1           ; entry_addr
mb1_header_end:

section .note.Xen note alloc noexec nowrite align=4
    dd 4                        ; name size ("Xen\0")
    dd 4                        ; descriptor size
    dd XEN_ELFNOTE_PHYS32_ENTRY
    db "Xen", 0
    dd boot_entry_pvh

section .boot.text progbits alloc exec nowrite align=16
bits 32

; PVH: ebx = physical address of struct hvm_start_info.
global boot_entry_pvh
boot_entry_pvh:
    mov edi, BOOT_PROTOCOL_PVH
    mov esi, ebx
    jmp boot_common

; Multiboot2: eax = loader magic, ebx = physical address of the boot information.
global boot_entry_mb2
boot_entry_mb2:
    cmp eax, MB2_LOADER_MAGIC
    jne .bad_loader
    mov edi, BOOT_PROTOCOL_MB2
    mov esi, ebx
    jmp boot_common
.bad_loader:
    mov esi, msg_bad_loader
    jmp boot_fail

; Multiboot1 (the flat image's entry_addr): eax = loader magic, ebx = the information.
global boot_entry_mb1
boot_entry_mb1:
    cmp eax, MB1_LOADER_MAGIC
    jne boot_entry_mb2.bad_loader
    mov edi, BOOT_PROTOCOL_MB1
    mov esi, ebx
    jmp boot_common

; edi = protocol, esi = boot info (both kept until kmain).
boot_common:
    cld
    mov eax, CPUID_EXT_MAX
    cpuid
    cmp eax, CPUID_EXT_FEATURES
    jb .no_long_mode
    mov eax, CPUID_EXT_FEATURES
    cpuid
    test edx, CPUID_EDX_LM
    jz .no_long_mode
    mov ebp, edx                ; feature bits, for NX below

    ; Without NX, bit 63 of an entry is reserved: strip it from every boot table.
    test ebp, CPUID_EDX_NX
    jnz .tables_ready
    mov ebx, boot_pml4_phys
.strip_nx:
    and dword [ebx + 4], ~PTE_NX_HIGH_DWORD
    add ebx, 8
    cmp ebx, boot_tables_end_phys
    jb .strip_nx
.tables_ready:

    lgdt [boot_gdtr]

    ; A loader may leave CR4.PGE on (multiboot2 leaves CR4 undefined): off,
    ; since a full TLB flush here is a CR3 reload, which keeps global entries.
    mov eax, cr4
    and eax, ~CR4_PGE
    or eax, CR4_PAE
    mov cr4, eax

    mov eax, boot_pml4_phys
    mov cr3, eax

    ; EFER as the loader left it, but TCE: an AMD CPU with it set (a kexec
    ; from Linux >= 6.15 may hand it over) makes INVLPG keep the upper-level
    ; paging-structure cache entries (AMD APM Vol. 2 §3.1.7), and the TLB
    ; code relies on INVLPG dropping them all (SDM Vol. 3A §4.10.4.1; tlb.h).
    ; The APs get exactly LME and NXE (smp.c).
    mov ecx, MSR_EFER
    rdmsr
    and eax, ~EFER_TCE
    or eax, EFER_LME
    test ebp, CPUID_EDX_NX
    jz .efer
    or eax, EFER_NXE            ; NX only where the CPU has it
.efer:
    wrmsr

    ; WP: read-only pages stay read-only for the kernel too.
    mov eax, cr0
    or eax, CR0_PG | CR0_WP | CR0_PE
    mov cr0, eax
    jmp BOOT_CS64:boot_long_mode

.no_long_mode:
    mov esi, msg_no_long_mode
    ; fall through

; Print the NUL-terminated string at esi on COM1 (only to say why booting
; stopped), then leave QEMU (or halt).
boot_fail:
.next:
    lodsb
    test al, al
    jz .done
    mov bl, al
    mov dx, COM1_PORT + UART_LSR
.wait:
    in al, dx
    test al, UART_LSR_THR_EMPTY
    jz .wait
    mov al, bl
    mov dx, COM1_PORT + UART_THR
    out dx, al
    jmp .next
.done:
    mov al, DEBUG_EXIT_PANIC
    out DEBUG_EXIT_PORT, al
.halt:
    cli
    hlt
    jmp .halt

bits 64
boot_long_mode:
    mov ax, BOOT_DS
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    mov rsp, __stack_top
    xor ebp, ebp                ; ends frame-pointer backtraces
    mov edi, edi                ; upper halves are undefined after the mode switch
    mov esi, esi
    mov rax, kmain
    call rax
.halt:
    cli
    hlt
    jmp .halt

section .boot.data progbits alloc noexec nowrite align=16
; Flat segments; accessed bits preset so loading them never writes the GDT.
boot_gdt:
    dq 0
    dq 0x00AF9B000000FFFF       ; 64-bit code, DPL 0
    dq 0x00CF93000000FFFF       ; data, DPL 0
boot_gdt_end:
boot_gdtr:
    dw boot_gdt_end - boot_gdt - 1
    dd boot_gdt

msg_bad_loader:
    db "Bail out! boot: not started by a PVH, multiboot2 or multiboot1 loader", 10, 0
msg_no_long_mode:
    db "Bail out! boot: this CPU has no long mode (x86-64)", 10, 0
