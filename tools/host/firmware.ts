/**
 * Where Debian (and Ubuntu) install the boot pieces the images and the
 * boot-path targets use: GRUB's platform directories, OVMF, iPXE. One place
 * for these paths; host/toolcheck.ts names the packages that provide them.
 */
import { existsSync } from "node:fs";

/** GRUB's modules and images per platform (grub-pc-bin, grub-efi-amd64-bin). */
export const GRUB_LIB = "/usr/lib/grub";
/** The GRUB platforms of the hybrid ISO: BIOS and 64-bit UEFI. */
export const GRUB_PLATFORMS = ["i386-pc", "x86_64-efi"] as const;
/** A GRUB platform. */
export type GrubPlatform = typeof GRUB_PLATFORMS[number];

/** A file that shows a GRUB platform is installed (its multiboot2 loader module). */
export function grubPlatformMarker(platform: GrubPlatform): string {
  return `${GRUB_LIB}/${platform}/multiboot2.mod`;
}

/** OVMF's code and variable-store template (package ovmf), newest layout first. */
export const OVMF_PAIRS: readonly { code: string; vars: string }[] = [
  { code: "/usr/share/OVMF/OVMF_CODE_4M.fd", vars: "/usr/share/OVMF/OVMF_VARS_4M.fd" },
  { code: "/usr/share/OVMF/OVMF_CODE.fd", vars: "/usr/share/OVMF/OVMF_VARS.fd" },
];

/** The iPXE option ROMs for QEMU's NICs (package ipxe-qemu, a dependency of qemu-system-x86). */
export const IPXE_QEMU_DIR = "/usr/lib/ipxe/qemu";
/** The NIC the PXE paths use: an Intel 82540EM, as common on real machines as in QEMU. */
export const PXE_NIC = "e1000";
/** Its ROM with both the BIOS and the UEFI iPXE driver (QEMU's default for the NIC). */
export const PXE_NIC_ROM = `${IPXE_QEMU_DIR}/efi-${PXE_NIC}.rom`;

/**
 * iPXE for BIOS PXE ROMs that are not iPXE (package ipxe): a lab's DHCP
 * server hands it out first, and iPXE then fetches the script.
 */
export const UNDIONLY_KPXE = "/usr/lib/ipxe/undionly.kpxe";

/** The installed OVMF pair, or null. */
export function findOvmf(): { code: string; vars: string } | null {
  return OVMF_PAIRS.find((p) => existsSync(p.code) && existsSync(p.vars)) ?? null;
}
