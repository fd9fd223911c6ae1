#!/bin/busybox sh
# PID 1 of the test VM: load the IPVS modules, mount the host read-only, the job directory
# (command, environment, working directory) at /run/ipvs-vm and the working directory
# read-write over 9p, chroot into the host and run the job there. The job's exit status goes
# to /run/ipvs-vm/rc and, as a fallback, to the console as a marker line.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^ipvs_vm\.$1=//p" | tail -n1; }
finish() {
  echo "IPVS_VM_EXIT=$1"
  sync
  poweroff -f
  sleep 5
}

conn_tab_bits=$(arg conn_tab_bits)
for m in $(cat /modules/load); do
  params=""
  [ "$m" = ip_vs.ko ] && [ -n "$conn_tab_bits" ] && params="conn_tab_bits=$conn_tab_bits"
  insmod "/modules/$m" $params || { echo "IPVS_VM_ERROR=insmod $m failed"; finish 90; }
done

root=/mnt/host
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro host "$root" \
  || { echo "IPVS_VM_ERROR=cannot mount the host root over 9p"; finish 91; }
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount -t devtmpfs devtmpfs "$root/dev"
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts devpts "$root/dev/pts"
mount -t tmpfs tmpfs "$root/dev/shm"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
# After the tmpfs mounts, so a working directory under /tmp or /run is not hidden by them.
job=/run/ipvs-vm
mkdir -p "$root$job"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 job "$root$job" \
  || { echo "IPVS_VM_ERROR=cannot mount the job directory over 9p"; finish 92; }
workdir=$(cat "$root$job/workdir")
mkdir -p "$root$workdir" 2>/dev/null
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 work "$root$workdir" \
  || { echo "IPVS_VM_ERROR=cannot mount the working directory over 9p"; finish 92; }
ip link set lo up

touch "$root$job/started"
# Through a pipe, so test runners print plain logs rather than redraw a terminal.
chroot "$root" /bin/sh -c 'cd "$1" && . /run/ipvs-vm/env && /bin/sh /run/ipvs-vm/cmd < /dev/null; echo $? > /run/ipvs-vm/rc' sh "$workdir" 2>&1 | cat > /dev/console
rc=$(cat "$root$job/rc" 2>/dev/null)
finish "${rc:-93}"
