# Sourced by hack/bench/shim-order.sh and berth-order.sh: a small ext2 file system on a loop
# device of our own with readahead off, so that a program run from it maps exactly the pages it
# touched. A page fault on a file page that is not cached reads that page only (no readahead:
# read_ahead_kb 0 on this device; ext2 pages are single 4 KiB folios), and the kernel's
# fault-around maps only pages already cached: after a remount (which empties the page cache
# of the file system), a page present in the process was used by it.
# cold_fs_mount DIR: makes and mounts the file system on DIR (an empty directory).
# cold_fs_put SRC...: copies the files into it and remounts it (no page of them cached).
# cold_fs_umount: unmounts it and frees the loop device (safe to call twice; for traps).
cold_fs_dir= cold_fs_loop= cold_fs_img=
cold_fs_mount() {
  cold_fs_dir=$1 cold_fs_img=$1.img
  truncate -s 4G "$cold_fs_img"   # sparse: a profiling build padded to 64 KiB per function is large
  mkfs.ext2 -q -F -N 64 "$cold_fs_img"
  cold_fs_loop=$(losetup -f --show "$cold_fs_img")
  echo 0 > "/sys/block/${cold_fs_loop##*/}/queue/read_ahead_kb"
  mount -t ext2 "$cold_fs_loop" "$cold_fs_dir"
}
cold_fs_put() {
  cp "$@" "$cold_fs_dir/"
  umount "$cold_fs_dir"
  mount -t ext2 "$cold_fs_loop" "$cold_fs_dir"
}
cold_fs_umount() {
  [ -n "$cold_fs_dir" ] && mountpoint -q "$cold_fs_dir" && umount "$cold_fs_dir"
  [ -n "$cold_fs_loop" ] && losetup -d "$cold_fs_loop"
  [ -n "$cold_fs_img" ] && rm -f "$cold_fs_img"
  cold_fs_dir= cold_fs_loop= cold_fs_img=
}
