#!/usr/bin/env bash
# Prepares a Debian 12 machine (as root) for snapshot-backup: installs the
# packages hostctl, the image build and the tests need, and makes sure
# libvirtd is running (started by hand where there is no systemd, as in CI).
# Idempotent: a second run changes nothing and takes seconds.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "setup-host.sh: run as root" >&2
  exit 1
fi

packages=(
  # libvirt + QEMU (TCG works where KVM does not)
  qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev
  # the kernel the appliance boots (its modules go into the initramfs)
  linux-image-amd64
  # appliance image build
  mmdebstrap squashfs-tools dosfstools mtools e2fsprogs gdisk
  # tests: the backup tool on the host (to read the repositories), cgo
  borgbackup gcc pkg-config ca-certificates make git curl systemd
  # tests of guest layouts: client disks with guest LVM (metadata only:
  # the host kernel may lack device-mapper) and XFS
  lvm2 xfsprogs fdisk
  # the Debian test guests boot from their own disks: GRUB for BIOS
  grub-pc-bin
  # tests of the backends and targets: the tools on the host to read the
  # repositories, gpg for the signature checks, an sshd and an ftp server
  # started by the tests on 127.0.0.1
  restic duplicity gnupg openssh-server python3-pyftpdlib python3-paramiko
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-host.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Go: the version go.mod names, from go.dev into /usr/local/go when missing
# (Debian 12's golang is too old).
export PATH=$PATH:/usr/local/go/bin
gover=$(awk '/^go / {print $2}' "$(dirname "$0")/../go.mod")
if ! go version 2>/dev/null | grep -q "go$gover"; then
  if ! command -v go >/dev/null || [ "$(printf '%s\n' "$gover" "$(go env GOVERSION | sed 's/^go//')" | sort -V | head -1)" != "$gover" ]; then
    echo "setup-host.sh: installing Go $gover into /usr/local/go"
    rm -rf /usr/local/go && curl -fsSL "https://go.dev/dl/go$gover.linux-amd64.tar.gz" | tar -C /usr/local -xz
  fi
fi

# libvirt's QEMU driver: run QEMU as root without a security driver or
# cgroups, which containers and CI machines often lack.
getent group kvm >/dev/null || groupadd -r kvm
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
id libvirt-qemu >/dev/null 2>&1 || useradd -r -g kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
conf=/etc/libvirt/qemu.conf
want='user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]'
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
  printf '%s\n' "$want" > "$conf"
  restart=1
fi
mkdir -p /var/log/libvirt /var/lib/libvirt /run/libvirt

if [ -d /run/systemd/system ]; then
  systemctl enable --now virtlogd.socket libvirtd.socket >/dev/null 2>&1 || true
  [ "${restart:-0}" = 1 ] && systemctl restart libvirtd || true
else
  pgrep -x virtlogd >/dev/null || virtlogd -d
  if [ "${restart:-0}" = 1 ] && pgrep -x libvirtd >/dev/null; then
    pkill -x libvirtd; sleep 1
  fi
  pgrep -x libvirtd >/dev/null || libvirtd -d
fi
for _ in $(seq 1 50); do
  virsh -c qemu:///system version >/dev/null 2>&1 && break
  sleep 0.2
done
virsh -c qemu:///system version >/dev/null || { echo "setup-host.sh: libvirtd does not answer" >&2; exit 1; }
echo "setup-host.sh: ready: $(virsh -c qemu:///system version | grep -i "running hypervisor")"
