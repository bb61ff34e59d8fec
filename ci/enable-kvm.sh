#!/usr/bin/env bash
# Let the runner's user open /dev/kvm when the machine has it (GitHub's Linux
# runners do); the runner itself uses KVM only with vmx or svm in
# /proc/cpuinfo, and TCG otherwise.
source "$(dirname "$0")/common.sh"
if [ ! -e /dev/kvm ]; then
  echo "enable-kvm: no /dev/kvm: QEMU runs under TCG"
  exit 0
fi
rule='KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"'
if command -v udevadm >/dev/null 2>&1 && [ -d /etc/udev/rules.d ]; then
  echo "$rule" | as_root tee /etc/udev/rules.d/99-kvm4all.rules >/dev/null
  as_root udevadm control --reload-rules
  as_root udevadm trigger --name-match=kvm
else
  as_root chmod 0666 /dev/kvm
fi
if grep -qE '\b(vmx|svm)\b' /proc/cpuinfo; then
  echo "enable-kvm: /dev/kvm usable, hardware virtualization present: QEMU uses KVM"
else
  echo "enable-kvm: /dev/kvm present but no vmx/svm: QEMU uses TCG"
fi
